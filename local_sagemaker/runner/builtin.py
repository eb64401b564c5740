"""Which built-in algorithm image a job names: the image registry's own data, any region, any version."""

from __future__ import annotations

import functools

from image_registry import ImageRegistry


@functools.lru_cache(maxsize=1)
def _xgboost_images() -> dict[str, str]:
    registry = ImageRegistry.default()
    return {info.uri: info.version for info in registry.images("xgboost")}


def xgboost_version(image: str) -> str | None:
    """The XGBoost version of a built-in XGBoost image URI (any region and partition), else None."""
    return _xgboost_images().get(image.strip())

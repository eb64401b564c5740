"""Which image runs a built-in algorithm: ECR URIs resolved from data files, never from code."""

from __future__ import annotations

from image_registry.registry import ImageInfo, ImageLookupError, ImageRegistry, Overrides, format_images, version_key

__all__ = ["ImageInfo", "ImageLookupError", "ImageRegistry", "Overrides", "format_images", "version_key"]

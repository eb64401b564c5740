"""Test-only views of local_sagemaker/api/patch.py: whether moto is patched, and undoing the patch."""

from __future__ import annotations

from local_sagemaker.api import patch


def installed() -> bool:
    return all(hasattr(getattr(cls, name, None), patch._MARK) for cls, name in patch._targets())


def uninstall() -> None:
    """Puts moto's own methods back (StopTrainingJob disappears again)."""
    for cls, name in patch._targets():
        current = getattr(cls, name, None)
        if current is None or not hasattr(current, patch._MARK):
            continue
        original = getattr(current, patch._MARK)
        if original is None:
            delattr(cls, name)
        else:
            setattr(cls, name, original)

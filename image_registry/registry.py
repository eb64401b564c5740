"""Resolve (algorithm, version, region) to a built-in algorithm's ECR image URI.

Everything comes from data files (`data/<algorithm>_images.json`), so a new algorithm, version or region is a data
change, never a code change. Config's `prebuilt_algorithms` layers on top through `with_overrides`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data"
_FILE_SUFFIX = "_images.json"
# A version whose registry map has this name predates the framework images (e.g. xgboost `1`): never the default.
_LEGACY_REGISTRY_MAP = "legacy"

Overrides = Mapping[str, Mapping[str, Mapping[str, str]]]
"""algorithm -> version -> region -> image URI, as in config's `prebuilt_algorithms`."""


class ImageLookupError(LookupError):
    """No image for what was asked; `field` says which part was wrong and `known` what would have worked."""

    def __init__(self, field: str, value: str, known: Iterable[str], message: str) -> None:
        self.field = field
        self.value = value
        self.known: tuple[str, ...] = tuple(known)
        super().__init__(f"{message}; known {field}s: {', '.join(self.known) or '(none)'}")


@dataclass(frozen=True)
class ImageInfo:
    """One image: what the `images` command lists."""

    algorithm: str
    version: str
    region: str
    uri: str
    legacy: bool


@dataclass(frozen=True)
class _Algorithm:
    """One algorithm's images, already expanded to URIs so overrides are a plain merge."""

    uris: Mapping[str, Mapping[str, str]]  # version -> region -> URI
    legacy: frozenset[str]
    aliases: Mapping[str, str]  # alias (lower case) -> version


def version_key(version: str) -> tuple[tuple[int, ...], str]:
    """Numeric ordering, so that "3.2-0" > "1.7-1" > "0.90-2" > "0.9-1" whatever the file order."""
    return tuple(int(n) for n in re.findall(r"\d+", version)), version


def _parse(doc: Mapping[str, Any], source: str) -> _Algorithm:
    """Expand one data file into URIs; a broken file fails loudly here rather than at lookup time."""
    try:
        uri_format: str = doc["uri_format"]
        default_domain: str = doc["default_domain"]
        domains: Mapping[str, str] = doc.get("alternate_domains", {})
        registries: Mapping[str, Mapping[str, str]] = doc["registries"]
        uris: dict[str, dict[str, str]] = {}
        legacy: set[str] = set()
        for version, spec in doc["versions"].items():
            registry_map = spec["registry_map"]
            if spec.get("legacy", registry_map == _LEGACY_REGISTRY_MAP):
                legacy.add(version)
            uris[version] = {
                region: uri_format.format(
                    account=account,
                    region=region,
                    domain=domains.get(region, default_domain),
                    repository=spec["repository"],
                    tag=spec["tag"],
                )
                for region, account in registries[registry_map].items()
            }
        aliases = {alias.lower(): target for alias, target in doc.get("version_aliases", {}).items()}
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(f"{source}: malformed image data ({type(exc).__name__}: {exc})") from exc
    for alias, target in aliases.items():
        if target not in uris:
            raise ValueError(f"{source}: version alias {alias!r} points at unknown version {target!r}")
    return _Algorithm(uris, frozenset(legacy), aliases)


@functools.lru_cache(maxsize=1)
def _packaged() -> ImageRegistry:
    """The packaged data, read once per process: the registry is immutable, so sharing it is safe."""
    return ImageRegistry.from_directory(DATA_DIR)


@dataclass(frozen=True)
class ImageRegistry:
    """Immutable lookup table of built-in algorithm images; `with_overrides` returns a new one."""

    _algorithms: Mapping[str, _Algorithm]

    @classmethod
    def default(cls) -> ImageRegistry:
        """The images shipped in `image_registry/data/`."""
        return _packaged()

    @classmethod
    def from_directory(cls, directory: Path) -> ImageRegistry:
        """Every `<algorithm>_images.json` in `directory`: one file per algorithm, no code per algorithm."""
        algorithms: dict[str, _Algorithm] = {}
        for path in sorted(directory.glob(f"*{_FILE_SUFFIX}")):
            name = path.name[: -len(_FILE_SUFFIX)].lower()
            algorithms[name] = _parse(json.loads(path.read_text(encoding="utf-8")), str(path))
        return cls(algorithms)

    def with_overrides(self, overrides: Overrides) -> ImageRegistry:
        """A copy with config's `prebuilt_algorithms` applied: replaces URIs, adds regions, versions or algorithms."""
        algorithms = dict(self._algorithms)
        for raw_name, versions in overrides.items():
            name = raw_name.strip().lower()
            old = algorithms.get(name, _Algorithm({}, frozenset(), {}))
            uris = {version: dict(regions) for version, regions in old.uris.items()}
            for raw_version, regions in versions.items():
                version = old.aliases.get(str(raw_version).lower(), str(raw_version))
                for region, uri in regions.items():
                    if not isinstance(uri, str) or not uri:
                        raise ValueError(f"prebuilt_algorithms.{name}.{version}.{region}: image URI must be a string")
                    uris.setdefault(version, {})[region.strip().lower()] = uri
            algorithms[name] = _Algorithm(uris, old.legacy, old.aliases)
        return ImageRegistry(algorithms)

    def algorithms(self) -> list[str]:
        return sorted(self._algorithms)

    def versions(self, algorithm: str) -> list[str]:
        """Every accepted version: current ones newest first, then legacy ones, then aliases."""
        algo = self._algorithm(algorithm)
        ordered = sorted(algo.uris, key=lambda v: (v not in algo.legacy, version_key(v)), reverse=True)
        return [*ordered, *sorted(algo.aliases)]

    def regions(self, algorithm: str, version: str = "") -> list[str]:
        """Regions that serve `version` (alias or "" resolved first), sorted."""
        name, version = algorithm.strip().lower(), self.resolve_version(algorithm, version)
        return sorted(self._algorithms[name].uris[version])

    def resolve_version(self, algorithm: str, version: str = "", region: str | None = None) -> str:
        """The real version meant: an alias's target, or for "" the newest non-legacy version (in `region` if given)."""
        name = algorithm.strip().lower()
        algo = self._algorithm(name)
        version = version.strip()
        if version in algo.uris:
            return version
        if version.lower() in algo.aliases:
            return algo.aliases[version.lower()]
        if version:
            raise ImageLookupError("version", version, self.versions(name), f"unknown version {version!r} of {name}")
        wanted = None if region is None else region.strip().lower()
        candidates = [v for v, regions in algo.uris.items() if wanted is None or wanted in regions]
        current = [v for v in candidates if v not in algo.legacy]
        if current or candidates:
            return max(current or candidates, key=version_key)
        known = sorted({r for regions in algo.uris.values() for r in regions})
        raise ImageLookupError("region", wanted or "", known, f"no {name} image in region {wanted!r}")

    def uri(self, algorithm: str, version: str, region: str) -> str:
        """The ECR image URI; "" as version means the newest non-legacy version available in `region`."""
        name = algorithm.strip().lower()
        resolved = self.resolve_version(name, version, region)
        regions = self._algorithms[name].uris[resolved]
        wanted = region.strip().lower()
        if wanted not in regions:
            raise ImageLookupError(
                "region", region, sorted(regions), f"unknown region {region!r} for {name} {resolved}"
            )
        return regions[wanted]

    def images(
        self, algorithm: str | None = None, region: str | None = None, version: str | None = None
    ) -> list[ImageInfo]:
        """Every image matching the filters (None or "" = any), for the `images` command; unknown filters raise."""
        names = [algorithm.strip().lower()] if algorithm else self.algorithms()
        if version and not algorithm:  # a version filter alone picks the algorithms that have it
            names = [n for n in names if self._has_version(n, version)] or names
        wanted = region.strip().lower() if region else None
        infos: list[ImageInfo] = []
        seen_regions: set[str] = set()
        for name in names:
            algo = self._algorithm(name)
            versions = [self.resolve_version(name, version)] if version else self.versions(name)
            for ver in (v for v in versions if v in algo.uris):
                seen_regions.update(algo.uris[ver])
                for reg, uri in sorted(algo.uris[ver].items()):
                    if wanted is None or reg == wanted:
                        infos.append(ImageInfo(name, ver, reg, uri, ver in algo.legacy))
        if wanted is not None and wanted not in seen_regions:
            raise ImageLookupError("region", wanted, sorted(seen_regions), f"no image in region {wanted!r}")
        return infos

    def identify(self, uri: str) -> ImageInfo | None:
        """The built-in image a URI names (any algorithm, version or region), or None for any other image."""
        return self._by_uri.get(uri.strip())

    @functools.cached_property
    def _by_uri(self) -> Mapping[str, ImageInfo]:
        return {info.uri: info for info in self.images()}

    def _has_version(self, algorithm: str, version: str) -> bool:
        algo = self._algorithm(algorithm)
        return version.strip() in algo.uris or version.strip().lower() in algo.aliases

    def _algorithm(self, algorithm: str) -> _Algorithm:
        name = algorithm.strip().lower()
        if name not in self._algorithms:
            raise ImageLookupError("algorithm", algorithm, self.algorithms(), f"unknown algorithm {algorithm!r}")
        return self._algorithms[name]


def format_images(infos: Iterable[ImageInfo]) -> str:
    """An aligned text table (algorithm, version, region, uri) for the CLI; legacy versions are marked."""
    rows = [("ALGORITHM", "VERSION", "REGION", "URI")]
    rows += [(i.algorithm, i.version + (" (legacy)" if i.legacy else ""), i.region, i.uri) for i in infos]
    widths = [max(len(row[col]) for row in rows) for col in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    )

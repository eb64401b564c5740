"""The image registry against its data file: every (version, region) pair, the file's examples, defaults, aliases,
overrides and errors. Expected URIs are rebuilt here straight from the JSON, independently of the code."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from image_registry import ImageInfo, ImageLookupError, ImageRegistry, format_images
from image_registry.registry import DATA_DIR

DATA_FILE = DATA_DIR / "xgboost_images.json"
DATA: dict[str, Any] = json.loads(DATA_FILE.read_text(encoding="utf-8"))
URI_SHAPE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z]{2}(-[a-z]+)+-\d)\.(?P<domain>[a-z0-9.-]+)/"
    r"(?P<repository>[a-z0-9-]+):(?P<tag>[A-Za-z0-9.-]+)$"
)
CUSTOM = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-xgboost:9.9-9"


def expected_uri(version: str, region: str) -> str:
    spec = DATA["versions"][version]
    return str(DATA["uri_format"]).format(
        account=DATA["registries"][spec["registry_map"]][region],
        region=region,
        domain=DATA["alternate_domains"].get(region, DATA["default_domain"]),
        repository=spec["repository"],
        tag=spec["tag"],
    )


def all_pairs() -> list[tuple[str, str]]:
    return [
        (version, region)
        for version, spec in DATA["versions"].items()
        for region in DATA["registries"][spec["registry_map"]]
    ]


def parse_example(key: str, uri: str) -> tuple[str, str]:
    """Example keys: "1 (legacy) us-east-1" -> ("1", "us-east-1"); "latest (alias of 1)" takes the URI's region."""
    words = re.sub(r"\([^)]*\)", " ", key).split()
    if len(words) == 2:
        return words[0], words[1]
    match = URI_SHAPE.match(uri)
    assert len(words) == 1 and match, key
    return words[0], match["region"]


def write_data(directory: Path, algorithm: str, doc: dict[str, Any]) -> None:
    (directory / f"{algorithm}_images.json").write_text(json.dumps(doc), encoding="utf-8")


@pytest.fixture(scope="module")
def reg() -> ImageRegistry:
    return ImageRegistry.default()


# --- every pair in the data file ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "region"), all_pairs())
def test_every_version_and_region_resolves(reg: ImageRegistry, version: str, region: str) -> None:
    uri = reg.uri("xgboost", version, region)
    assert uri == expected_uri(version, region)
    match = URI_SHAPE.match(uri)
    assert match, uri
    assert match["region"] == region
    assert match["tag"] == DATA["versions"][version]["tag"]


@pytest.mark.parametrize(("key", "uri"), list(DATA["examples"].items()))
def test_examples_in_data_file(reg: ImageRegistry, key: str, uri: str) -> None:
    version, region = parse_example(key, uri)
    assert reg.uri("xgboost", version, region) == uri


def test_pair_count_and_listing(reg: ImageRegistry) -> None:
    assert len(all_pairs()) > 300
    infos = reg.images()
    assert {(i.version, i.region) for i in infos} == set(all_pairs())
    assert len(infos) == len(all_pairs())


def test_data_covers_legacy_cpu_py3_china_and_isolated(reg: ImageRegistry) -> None:
    assert reg.uri("xgboost", "1.7-1", "cn-north-1") == (
        "450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-xgboost:1.7-1"
    )
    assert reg.uri("xgboost", "1", "cn-northwest-1").endswith(".amazonaws.com.cn/xgboost:1")
    assert reg.uri("xgboost", "1.7-1", "us-iso-east-1").endswith(".c2s.ic.gov/sagemaker-xgboost:1.7-1")
    assert reg.uri("xgboost", "3.2-0", "us-isof-south-1").endswith(".csp.hci.ic.gov/sagemaker-xgboost:3.2-0")
    assert reg.uri("xgboost", "0.90-2", "us-east-1").endswith("/sagemaker-xgboost:0.90-2-cpu-py3")


def test_no_accounts_or_regions_in_code() -> None:
    for path in Path(DATA_DIR).parent.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"\d{12}", source), path
        assert not re.search(r"\b(us|eu|ap|cn)-[a-z]+-\d\b", source), path


# --- versions, defaults, aliases -------------------------------------------------------------------------------------


def test_listing(reg: ImageRegistry) -> None:
    assert reg.algorithms() == ["xgboost"]
    assert reg.versions("xgboost") == [
        "3.2-0", "3.0-5", "1.7-1", "1.5-1", "1.3-1", "1.2-2", "1.2-1", "1.0-1", "0.90-2", "0.90-1", "1", "latest",
    ]  # fmt: skip
    assert reg.regions("xgboost", "1.7-1") == sorted(DATA["registries"]["algorithm"])
    assert reg.regions("xgboost", "latest") == sorted(DATA["registries"]["legacy"])
    assert reg.regions("xgboost") == reg.regions("xgboost", "3.2-0")


def test_empty_version_is_newest_non_legacy(reg: ImageRegistry) -> None:
    assert reg.resolve_version("xgboost", "") == "3.2-0"
    assert reg.uri("xgboost", "", "us-east-1") == expected_uri("3.2-0", "us-east-1")
    assert reg.uri("xgboost", "  ", "eu-west-1") == expected_uri("3.2-0", "eu-west-1")


def test_newest_is_by_version_order_not_file_order(tmp_path: Path) -> None:
    doc = dict(DATA)
    order = ["0.90-2", "3.2-0", "1", "1.7-1", "0.90-1"]
    doc["versions"] = {v: DATA["versions"][v] for v in order}
    write_data(tmp_path, "xgboost", doc)
    assert ImageRegistry.from_directory(tmp_path).resolve_version("xgboost", "") == "3.2-0"
    doc["versions"] = {"0.9-1": DATA["versions"]["1.7-1"], "0.10-1": DATA["versions"]["1.7-1"]}
    doc["version_aliases"] = {}
    write_data(tmp_path, "xgboost", doc)
    assert ImageRegistry.from_directory(tmp_path).resolve_version("xgboost", "") == "0.10-1"


def test_empty_version_picks_newest_available_in_region(tmp_path: Path) -> None:
    doc = dict(DATA)
    doc["registries"] = {**DATA["registries"], "small": {"us-east-1": "111111111111"}}
    doc["versions"] = {**DATA["versions"], "9.0-1": {**DATA["versions"]["3.2-0"], "registry_map": "small"}}
    write_data(tmp_path, "xgboost", doc)
    reg = ImageRegistry.from_directory(tmp_path)
    assert reg.resolve_version("xgboost", "") == "9.0-1"
    assert reg.uri("xgboost", "", "us-east-1").startswith("111111111111.")
    assert reg.uri("xgboost", "", "eu-west-1") == expected_uri("3.2-0", "eu-west-1")


def test_only_legacy_versions_still_give_a_default(tmp_path: Path) -> None:
    doc = {**DATA, "versions": {"1": DATA["versions"]["1"]}}
    write_data(tmp_path, "xgboost", doc)
    assert ImageRegistry.from_directory(tmp_path).uri("xgboost", "", "us-east-1") == expected_uri("1", "us-east-1")


def test_aliases(reg: ImageRegistry) -> None:
    assert DATA["version_aliases"] == {"latest": "1"}
    assert reg.resolve_version("xgboost", "latest") == "1"
    assert reg.resolve_version("xgboost", "LATEST") == "1"
    assert reg.uri("xgboost", "latest", "us-east-1") == reg.uri("xgboost", "1", "us-east-1")
    assert reg.uri("xgboost", "latest", "us-east-1").endswith("/xgboost:1")


def test_algorithm_names_are_case_insensitive(reg: ImageRegistry) -> None:
    assert reg.uri("XGBOOST", "1.7-1", "us-east-1") == reg.uri("xgboost", "1.7-1", "us-east-1")
    assert (
        reg.uri("XGBoost", "1.7-1", "us-east-1")
        == "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    )
    assert reg.versions("XgBoost") == reg.versions("xgboost")
    assert reg.images(algorithm="XGBOOST", region="us-east-1", version="1.7-1")[0].algorithm == "xgboost"


# --- errors ------------------------------------------------------------------------------------------------------


def test_unknown_algorithm_lists_known(reg: ImageRegistry) -> None:
    with pytest.raises(ImageLookupError) as info:
        reg.uri("lightgbm", "1", "us-east-1")
    assert info.value.field == "algorithm"
    assert info.value.known == ("xgboost",)
    assert str(info.value) == "unknown algorithm 'lightgbm'; known algorithms: xgboost"
    assert isinstance(info.value, LookupError)


def test_unknown_version_lists_known(reg: ImageRegistry) -> None:
    with pytest.raises(ImageLookupError) as info:
        reg.uri("xgboost", "9.9", "us-east-1")
    assert info.value.field == "version"
    assert info.value.value == "9.9"
    assert str(info.value).startswith("unknown version '9.9' of xgboost; known versions: 3.2-0, 3.0-5, 1.7-1, ")
    assert str(info.value).endswith(", 0.90-1, 1, latest")


def test_unknown_region_lists_known(reg: ImageRegistry) -> None:
    with pytest.raises(ImageLookupError) as info:
        reg.uri("xgboost", "1.7-1", "mars-1")
    assert info.value.field == "region"
    assert info.value.known == tuple(sorted(DATA["registries"]["algorithm"]))
    assert str(info.value).startswith(
        "unknown region 'mars-1' for xgboost 1.7-1; known regions: af-south-1, ap-east-1, "
    )


def test_region_missing_for_legacy_version(reg: ImageRegistry) -> None:
    region = next(r for r in DATA["registries"]["algorithm"] if r not in DATA["registries"]["legacy"])
    assert reg.uri("xgboost", "1.7-1", region)
    with pytest.raises(ImageLookupError, match=f"unknown region '{region}' for xgboost 1; known regions: ") as info:
        reg.uri("xgboost", "latest", region)
    assert region not in info.value.known


def test_unknown_region_with_default_version(reg: ImageRegistry) -> None:
    with pytest.raises(
        ImageLookupError, match="no xgboost image in region 'mars-1'; known regions: af-south-1"
    ) as info:
        reg.uri("xgboost", "", "mars-1")
    assert info.value.field == "region"


def test_malformed_data_file_fails_at_load(tmp_path: Path) -> None:
    doc = {**DATA, "versions": {"1.7-1": {**DATA["versions"]["1.7-1"], "registry_map": "nope"}}}
    write_data(tmp_path, "xgboost", doc)
    with pytest.raises(ValueError, match="malformed image data"):
        ImageRegistry.from_directory(tmp_path)
    write_data(tmp_path, "xgboost", {**DATA, "version_aliases": {"latest": "7"}})
    with pytest.raises(ValueError, match="alias 'latest' points at unknown version '7'"):
        ImageRegistry.from_directory(tmp_path)


# --- overrides (config prebuilt_algorithms) ------------------------------------------------------------------------


def test_override_adds_new_version(reg: ImageRegistry) -> None:
    over = reg.with_overrides({"xgboost": {"9.9-9": {"us-east-1": CUSTOM}}})
    assert over.uri("xgboost", "9.9-9", "us-east-1") == CUSTOM
    assert over.uri("xgboost", "", "us-east-1") == CUSTOM  # newest by version order
    assert over.uri("xgboost", "", "eu-west-1") == expected_uri("3.2-0", "eu-west-1")  # not there: next newest
    assert over.versions("xgboost")[0] == "9.9-9"
    with pytest.raises(ImageLookupError, match=r"known regions: us-east-1$"):
        over.uri("xgboost", "9.9-9", "eu-west-1")
    # immutable: the original is untouched
    with pytest.raises(ImageLookupError):
        reg.uri("xgboost", "9.9-9", "us-east-1")
    assert ImageRegistry.default().versions("xgboost")[0] == "3.2-0"


def test_override_replaces_existing_uri(reg: ImageRegistry) -> None:
    mirror = "999999999999.dkr.ecr.us-east-1.amazonaws.com/mirror/sagemaker-xgboost:1.7-1"
    over = reg.with_overrides({"XGBoost": {"1.7-1": {"us-east-1": mirror}}})
    assert over.uri("xgboost", "1.7-1", "us-east-1") == mirror
    assert over.uri("xgboost", "1.7-1", "us-west-2") == expected_uri("1.7-1", "us-west-2")
    assert reg.uri("xgboost", "1.7-1", "us-east-1") == expected_uri("1.7-1", "us-east-1")


def test_override_adds_region_to_existing_version(reg: ImageRegistry) -> None:
    uri = "123456789012.dkr.ecr.mars-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    over = reg.with_overrides({"xgboost": {"1.7-1": {"mars-1": uri}}})
    assert over.uri("xgboost", "1.7-1", "mars-1") == uri
    assert "mars-1" in over.regions("xgboost", "1.7-1")
    assert over.uri("xgboost", "1.7-1", "us-east-1") == expected_uri("1.7-1", "us-east-1")


def test_override_through_alias_and_legacy_stays_legacy(reg: ImageRegistry) -> None:
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/xgboost:1"
    over = reg.with_overrides({"xgboost": {"latest": {"us-east-1": uri}}})
    assert over.uri("xgboost", "1", "us-east-1") == uri
    assert over.resolve_version("xgboost", "") == "3.2-0"
    assert [i.legacy for i in over.images(version="1", region="us-east-1")] == [True]


def test_override_for_unknown_algorithm_adds_it(reg: ImageRegistry) -> None:
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-algo:2.0"
    over = reg.with_overrides({"My-Algo": {"2.0": {"us-east-1": uri}, "1.0": {"us-east-1": uri[:-3] + "1.0"}}})
    assert over.algorithms() == ["my-algo", "xgboost"]
    assert over.uri("MY-ALGO", "", "us-east-1") == uri
    assert over.versions("my-algo") == ["2.0", "1.0"]
    assert reg.algorithms() == ["xgboost"]


def test_override_rejects_non_string_uri(reg: ImageRegistry) -> None:
    with pytest.raises(ValueError, match=r"prebuilt_algorithms\.xgboost\.1\.7-1\.us-east-1"):
        reg.with_overrides({"xgboost": {"1.7-1": {"us-east-1": 5}}})  # type: ignore[dict-item]


# --- data-driven loading -----------------------------------------------------------------------------------------


def test_default_is_loaded_once(reg: ImageRegistry) -> None:
    assert ImageRegistry.default() is ImageRegistry.default() is reg


def test_new_algorithm_is_a_new_data_file(tmp_path: Path) -> None:
    write_data(tmp_path, "xgboost", DATA)
    doc = {
        "uri_format": "{account}.dkr.ecr.{region}.{domain}/{repository}:{tag}",
        "default_domain": "amazonaws.com",
        "versions": {"1": {"repository": "linear-learner", "tag": "1", "registry_map": "main"}},
        "registries": {"main": {"us-east-1": "382416733822"}},
    }
    write_data(tmp_path, "Linear-Learner", doc)
    reg = ImageRegistry.from_directory(tmp_path)
    assert reg.algorithms() == ["linear-learner", "xgboost"]
    assert reg.uri("linear-learner", "", "us-east-1") == "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"


# --- images command ------------------------------------------------------------------------------------------------


def test_images_filters(reg: ImageRegistry) -> None:
    china = reg.images(region="cn-north-1")
    assert [i.version for i in china] == reg.versions("xgboost")[:-1]  # every real version, newest first, no alias
    assert all(".amazonaws.com.cn/" in i.uri and i.region == "cn-north-1" for i in china)
    assert [i.legacy for i in china] == [False] * (len(china) - 1) + [True]
    assert reg.images(algorithm="xgboost", version="latest", region="us-east-1") == [
        ImageInfo("xgboost", "1", "us-east-1", expected_uri("1", "us-east-1"), True)
    ]
    assert reg.images(version="1.7-1") == reg.images(algorithm="xgboost", version="1.7-1")
    assert len(reg.images(version="1.7-1")) == len(DATA["registries"]["algorithm"])
    assert reg.images(region="", version="") == reg.images()


def test_images_unknown_filters(reg: ImageRegistry) -> None:
    with pytest.raises(ImageLookupError) as info:
        reg.images(region="mars-1")
    assert info.value.field == "region"
    with pytest.raises(ImageLookupError) as info:
        reg.images(algorithm="nope")
    assert info.value.field == "algorithm"
    with pytest.raises(ImageLookupError) as info:
        reg.images(version="0.1")
    assert info.value.field == "version"


def test_format_images_is_aligned(reg: ImageRegistry) -> None:
    infos = reg.images(region="us-east-1")
    lines = format_images(infos).splitlines()
    assert lines[0].split() == ["ALGORITHM", "VERSION", "REGION", "URI"]
    assert len(lines) == len(infos) + 1
    uri_column = lines[0].index("URI")
    for line, info in zip(lines[1:], infos, strict=True):
        assert line[uri_column:] == info.uri
        assert line.startswith("xgboost ")
        assert line.index("us-east-1") == lines[0].index("REGION")
    assert "1 (legacy)" in format_images(reg.images(version="1", region="us-east-1"))
    assert format_images([]).split() == ["ALGORITHM", "VERSION", "REGION", "URI"]


def test_identify_names_every_built_in_image_and_no_other() -> None:
    registry = ImageRegistry.default()
    infos = registry.images("xgboost")
    assert len(infos) > 100
    for info in infos:
        assert registry.identify(info.uri) == info
    uri = registry.uri("xgboost", "1.7-1", "us-east-1")
    assert registry.identify(f" {uri} ") == registry.identify(uri)
    for other in (uri + "-gpu", uri.replace("sagemaker-xgboost", "my-xgboost"), "123456789012.dkr.ecr.us-east-1."
                  "amazonaws.com/team/trainer:1.0", ""):
        assert registry.identify(other) is None

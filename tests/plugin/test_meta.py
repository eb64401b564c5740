"""ResourceMeta.decode's refusals of a blob that holds no JSON object, in its own words (the connector's are in
tests/flyte/test_serve.py and test_serve_safely.py: both read the blob through plugin/meta.py's `json_object`)."""

from __future__ import annotations

import pytest

from handlers.errors import InputError
from plugin.meta import JsonRefusal, ResourceMeta, json_object


@pytest.mark.parametrize(("blob", "message"), [
    (b"\x80not json", "resource meta is not JSON: 'utf-8' codec can't decode byte 0x80 in position 0: invalid start "
                      "byte"),
    ("{", "resource meta is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ("[" * 200_000 + "]" * 200_000, "resource meta is nested too deeply"),
    ("[1, 2]", "resource meta must be a JSON object"),
    ("null", "resource meta must be a JSON object"),
])
def test_a_meta_that_is_no_json_object_is_refused_saying_why(blob: bytes | str, message: str) -> None:
    with pytest.raises(InputError) as refused:
        ResourceMeta.decode(blob)
    assert str(refused.value) == message


def test_json_object_gives_the_object_or_the_reason() -> None:
    assert json_object('{"a": 1}') == {"a": 1}
    assert json_object("[]") == JsonRefusal()
    assert json_object("[" * 200_000) == JsonRefusal(too_deep=True)
    refusal = json_object("{x")
    assert isinstance(refusal, JsonRefusal) and refusal.error.startswith("Expecting property name")
    assert refusal.say(not_json="bad ({error})", too_deep="deep", not_object="other") == f"bad ({refusal.error})"

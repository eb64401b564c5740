"""local_sagemaker/log_limits.py: CloudWatch Logs' event limit read from botocore's PutLogEvents documentation, and
lines longer than an event may be written as ordered events that give the line back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.service_model import operation_model
from local_sagemaker import log_limits
from local_sagemaker.log_limits import EventLimits, limits, parse, split_lines, split_message
from local_sagemaker.logs import LogLine

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None)


def test_todays_documentation_is_parsed_and_gives_1_mb_with_the_26_byte_overhead() -> None:
    documentation = str(operation_model("PutLogEvents", "logs").documentation)
    assert "Each log event can be no larger than 1 MB" in documentation  # the figure this test stands for
    found = parse(documentation)
    assert found.documented  # every figure read from the text, none a fallback
    assert (found.event_bytes, found.batch_bytes, found.overhead_bytes) == (1024 * 1024, 1_048_576, 26)
    assert limits() == found and found.message_bytes == 1_048_576 - 26


def test_other_figures_are_read_as_written() -> None:
    text = ("<p>The maximum batch size is 2,000,000 bytes. This size is calculated as the sum of all event messages "
            "in UTF-8, plus 40 bytes for each log event.</p><li><p>Each log event can be no larger than 256 KB.</p>")
    assert parse(text) == EventLimits(256 * 1024, 2_000_000, 40, documented=True)
    assert parse(text).message_bytes == 256 * 1024 - 40


def test_a_text_without_the_figures_falls_back_and_says_so() -> None:
    found = parse("<p>Uploads a batch of log events.</p>")
    assert not found.documented
    assert found.message_bytes == 1024 * 1024 - 26


@pytest.mark.parametrize("cap", [4, 5, 6, 7, 8, 1000])
def test_a_character_is_never_cut(cap: int) -> None:
    text = "a€𝄞é" * 50
    pieces = split_message(text, cap)
    assert "".join(pieces) == text
    assert all(0 < len(piece.encode()) <= cap for piece in pieces)


@SETTINGS
@given(text=st.text(st.characters(codec="utf-8"), max_size=300), cap=st.integers(min_value=1, max_value=64))
def test_pieces_give_the_text_back_each_within_the_cap(text: str, cap: int) -> None:
    pieces = split_message(text, cap)
    assert "".join(pieces) == text
    assert all(len(piece.encode()) <= max(4, cap) for piece in pieces)
    assert len(pieces) == 1 or all(piece for piece in pieces)


def test_a_20_mib_line_becomes_ordered_events_of_at_most_the_limit() -> None:
    unit = "0123456789" * 7 + "é€𝄞"
    line = unit * (20 * 1024 * 1024 // len(unit.encode()) + 1)
    assert len(line.encode()) >= 20 * 1024 * 1024
    before, after = LogLine(1, 5, "before"), LogLine(1, 7, "after")
    events = split_lines([before, LogLine(1, 6, line), after])
    assert events[0] == before and events[-1] == after
    middle = events[1:-1]
    assert "".join(event.message for event in middle) == line
    assert {(event.host, event.timestamp_ms) for event in middle} == {(1, 6)}
    assert all(len(event.message.encode()) <= limits().message_bytes for event in middle)
    assert len(middle) == -(-len(line.encode()) // limits().message_bytes)


def test_short_lines_are_the_same_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [LogLine(1, 1, "x" * 100), LogLine(2, 1, "")]
    assert split_lines(lines) == lines and all(a is b for a, b in zip(split_lines(lines), lines, strict=True))
    monkeypatch.setattr(log_limits, "limits", lambda: EventLimits(10, 10, 2))
    assert [event.message for event in split_lines([LogLine(1, 1, "abcdefghijkl")])] == ["abcdefgh", "ijkl"]

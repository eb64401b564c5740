"""CloudWatch Logs' size limit on one event, as botocore's PutLogEvents documentation states it, and the split of a
longer line into events that fit.

A job may print a line of any length; CloudWatch Logs takes no event larger than its limit. The local SageMaker
writes such a line as several events, in order, each with the line's timestamp: concatenated they give the line back
(nothing is dropped or cut short). Sizes are UTF-8 bytes, as CloudWatch counts them, and a character is never cut.

The figures are read from the operation's documentation text at run time (botocore's model carries no number for
them): "Each log event can be no larger than 1 MB", "The maximum batch size is 1,048,576 bytes ... plus 26 bytes
for each log event". A figure the text no longer states falls back to today's, and `EventLimits.documented` says so.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from dataclasses import dataclass

import regex

from handlers.service_model import operation_model
from local_sagemaker.logs import LogLine

_UNITS = {"bytes": 1, "byte": 1, "kb": 1024, "mb": 1024**2}  # AWS's KB and MB here: 256 KB was 262,144 bytes
_EVENT = regex.compile(r"each log event can be no larger than ([\d,.]+)\s*(bytes?|KB|MB)\b", regex.IGNORECASE)
_BATCH = regex.compile(r"maximum batch size is ([\d,.]+)\s*(bytes?|KB|MB)\b", regex.IGNORECASE)
_OVERHEAD = regex.compile(r"plus ([\d,]+) bytes for each log event", regex.IGNORECASE)

# Fallbacks, only for a botocore whose documentation no longer states a figure in these words (the figures of
# botocore 1.43's text; a test checks that today's text is parsed and gives them).
_FALLBACK_EVENT_BYTES = 1024**2
_FALLBACK_BATCH_BYTES = 1_048_576
_FALLBACK_OVERHEAD_BYTES = 26


@dataclass(frozen=True)
class EventLimits:
    event_bytes: int  # one event at most
    batch_bytes: int  # one PutLogEvents batch at most: its messages plus `overhead_bytes` per event
    overhead_bytes: int  # what CloudWatch counts per event besides its message
    documented: bool = True  # every figure read from the documentation (else some are the fallbacks)

    @property
    def message_bytes(self) -> int:
        """The longest message one event may carry: counted as CloudWatch counts an event (its message plus the
        per-event overhead), it fits the event limit and, alone, a batch."""
        return min(self.event_bytes, self.batch_bytes) - self.overhead_bytes


def parse(documentation: str) -> EventLimits:
    """The limits PutLogEvents' documentation (HTML, as in botocore's model) states."""
    text = " ".join(html.unescape(regex.sub(r"<[^>]+>", " ", documentation)).split())
    event, batch, overhead = (_find(pattern, text) for pattern in (_EVENT, _BATCH, _OVERHEAD))
    return EventLimits(event or _FALLBACK_EVENT_BYTES, batch or _FALLBACK_BATCH_BYTES,
                       overhead or _FALLBACK_OVERHEAD_BYTES, documented=None not in (event, batch, overhead))


def _find(pattern: regex.Pattern[str], text: str) -> int | None:
    """The size in bytes `pattern` finds in `text` (its number, and its unit when it captures one)."""
    match = pattern.search(text)
    if match is None:
        return None
    return _size(match.group(1), match.group(2) if pattern.groups > 1 else "bytes")


def _size(number: str, unit: str) -> int | None:
    try:
        value = float(number.replace(",", ""))
    except ValueError:
        return None
    size = int(value * _UNITS[unit.lower()])
    return size if size > 0 else None


@functools.lru_cache(maxsize=1)
def limits() -> EventLimits:
    """Today's limits, from the installed botocore's PutLogEvents documentation."""
    return parse(str(operation_model("PutLogEvents", "logs").documentation or ""))


def split_message(message: str, max_bytes: int) -> list[str]:
    """`message` in order, as pieces of at most `max_bytes` UTF-8 bytes each, never cutting a character."""
    max_bytes = max(4, max_bytes)  # room for any one character
    if len(message) * 4 <= max_bytes:  # a character is at most 4 bytes: short lines need no encoding
        return [message]
    data = message.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return [message]
    pieces: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + max_bytes, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a continuation byte: the character began earlier
            end -= 1
        pieces.append(data[start:end].decode("utf-8", "surrogatepass"))
        start = end
    return pieces


def split_lines(lines: Sequence[LogLine], max_bytes: int | None = None) -> list[LogLine]:
    """The events to write for `lines`, in order: a line longer than an event may be becomes several events with its
    timestamp (default size: `limits().message_bytes`)."""
    cap = limits().message_bytes if max_bytes is None else max_bytes
    out: list[LogLine] = []
    for line in lines:
        pieces = split_message(line.message, cap)
        if len(pieces) == 1:
            out.append(line)
        else:
            out.extend(LogLine(line.host, line.timestamp_ms, piece) for piece in pieces)
    return out

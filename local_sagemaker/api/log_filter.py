"""CloudWatch Logs' FilterLogEvents as AWS documents it, for the local server (moto's version falls short).

moto 5.2.5 ignores `logStreamNamePrefix` (a job's prefix returned every job's events, so `aws logs tail
--log-stream-name-prefix <job>` showed them all), interleaves only on request, matches filter patterns loosely and
pages with a token that goes stale. Here: streams chosen by name list or prefix (not both, as AWS requires), events of
every chosen stream merged in time order, `startTime`/`endTime` inclusive, the text forms of the filter-pattern syntax
(terms, "quoted phrases", `?` alternatives, `-` exclusions, `%regex%`), and a nextToken only when events remain: the
position after the last event returned, so events written later still come on the next page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import regex
from moto.logs.exceptions import InvalidParameterException, ResourceNotFoundException

from local_sagemaker import page_tokens

MAX_LIMIT = 10_000  # AWS's maximum and default page size for FilterLogEvents
_TOKEN_PREFIX = "lsmf1."

EventKey = tuple[int, str, int]  # timestamp, stream name, position in the stream


@dataclass(frozen=True)
class Pattern:
    """A filter pattern's text form: a match has every `all_of`, one `any_of` (if any) and no `none_of`."""

    all_of: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    none_of: tuple[str, ...] = ()
    expression: Any = None  # a compiled %regex%

    @classmethod
    def parse(cls, text: str | None) -> Pattern:
        text = (text or "").strip()
        if not text or text[0] in "{[":
            return cls()  # JSON and space-delimited patterns are not emulated: all match (docs/local-sagemaker.md)
        if len(text) > 1 and text[0] == "%" and text[-1] == "%":
            try:
                return cls(expression=regex.compile(text[1:-1]))
            except regex.error:
                raise InvalidParameterException("Invalid filter pattern") from None
        all_of, any_of, none_of = [], [], []
        for term in _terms(text):
            if term.startswith("?"):
                any_of.append(term[1:])
            elif term.startswith("-"):
                none_of.append(term[1:])
            else:
                all_of.append(term)
        return cls(tuple(all_of), tuple(t for t in any_of if t), tuple(t for t in none_of if t))

    def matches(self, message: str) -> bool:
        if self.expression is not None:
            return self.expression.search(message) is not None
        return (
            all(term in message for term in self.all_of)
            and (not self.any_of or any(term in message for term in self.any_of))
            and not any(term in message for term in self.none_of)
        )


def _terms(text: str) -> Iterable[str]:
    """Space-separated terms; a double-quoted phrase (after an optional ? or -) is one term, quotes removed."""
    index = 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        sign = text[index] if text[index] in "?-" else ""
        start = index + len(sign)
        if start < len(text) and text[start] == '"':
            end = text.find('"', start + 1)
            end = len(text) if end < 0 else end
            yield sign + text[start + 1 : end]
            index = end + 1
        else:
            end = start
            while end < len(text) and not text[end].isspace():
                end += 1
            yield sign + text[start:end]
            index = end


def filter_log_events(backend: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """The FilterLogEvents answer from moto's logs backend for the request `params` (JSON, as the API takes it)."""
    group = _group(backend, params)
    names: Sequence[str] = params.get("logStreamNames") or ()
    prefix = params.get("logStreamNamePrefix")
    if names and prefix is not None:
        # AWS refuses the pair; its exact wording is not published, this says what is wrong.
        raise InvalidParameterException("logStreamNames and logStreamNamePrefix cannot both be specified.")
    limit = params.get("limit") or MAX_LIMIT
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidParameterException(
            constraint=f"Member must have value less than or equal to {MAX_LIMIT}", parameter="limit", value=limit
        )
    start, end = params.get("startTime"), params.get("endTime")
    pattern = Pattern.parse(params.get("filterPattern"))
    after = _decode(params["nextToken"]) if params.get("nextToken") else None

    chosen = [
        (name, stream)
        for name, stream in group.streams.items()
        if (not names or name in names) and (prefix is None or name.startswith(prefix))
    ]
    found: list[tuple[EventKey, str, Any]] = []
    for name, stream in chosen:
        for position, event in enumerate(stream.events):
            key = (int(event.timestamp), name, position)
            if after is not None and key <= after:
                continue
            if (start is not None and event.timestamp < start) or (end is not None and event.timestamp > end):
                continue
            if pattern.matches(event.message):
                found.append((key, name, event))
    found.sort(key=lambda item: item[0])
    page = found[:limit]
    events = [{**event.to_filter_dict(), "logStreamName": name} for _, name, event in page]
    # searchedLogStreams: "no longer supported ... returns an empty list" (the API reference, since 2020).
    answer: dict[str, Any] = {"events": events, "searchedLogStreams": []}
    if len(found) > limit:
        answer["nextToken"] = _encode(page[-1][0])
    return answer


def _group(backend: Any, params: Mapping[str, Any]) -> Any:
    name = params.get("logGroupName")
    identifier = params.get("logGroupIdentifier")
    if name and identifier:
        raise InvalidParameterException("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
    if identifier and not name:
        name = str(identifier)
        if name.startswith("arn:"):
            name = name.split(":log-group:", 1)[-1].removesuffix(":*")
    group = backend.groups.get(name)
    if group is None:
        raise ResourceNotFoundException()
    return group


def _encode(key: EventKey) -> str:
    return page_tokens.encode(_TOKEN_PREFIX, list(key))


def _decode(token: Any) -> EventKey:
    value = page_tokens.decode(_TOKEN_PREFIX, token)
    if (
        value is not None
        and len(value) == 3
        and isinstance(value[0], int)
        and isinstance(value[1], str)
        and isinstance(value[2], int)
    ):
        return (value[0], value[1], value[2])
    raise InvalidParameterException("The specified nextToken is invalid.")

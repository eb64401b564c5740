"""Plain words for a refused value: the allowed values closest to it, a short view of many, why a pattern refuses it.

One suggestion rule for every "did you mean": unknown keys of task, message and config files, XGBoost hyperparameter
names, and the values of every enum botocore's service model declares (instance types among them). Nothing here knows
a SageMaker rule: the allowed values and patterns come from the caller (the service model, a definitions file).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any

#: the most values an enum message lists whole; longer sets are shown by their families, or cut
LISTED_VALUES = 12
#: values longer than this are not taken apart to explain a pattern (a bound on the cost)
_EXPLAINED_LENGTH = 1024
_REPAIRS = 8  # the most distinct characters a reason names
_FILLERS = ("a", "0", "")  # what a suspect character is replaced with to see whether the rest would pass
_CHAR_NAMES = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", " ": "a space"}
_NATURAL = re.compile(r"(\d+)")


def closest(word: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.75) -> list[str]:
    """The choices nearest to `word`, best first, at most `n`: case aside; a choice `word` is a part of (a value typed
    short, `ml.p3.16xl`) before any other; never one that differs by a rewritten stretch rather than a typo
    (`ml.bogus.xlarge` is not near `ml.g6.xlarge`, though most of their letters agree)."""
    folded: dict[str, str] = {}
    for choice in sorted(choices):
        folded.setdefault(choice.casefold(), choice)
    target = word.casefold()
    if target in folded:
        return [folded[target]] if folded[target] != word else []
    near = [folded[m] for m in difflib.get_close_matches(target, list(folded), n=len(folded), cutoff=cutoff)
            if _small_edit(target, m)]
    within = [choice for choice in near if target in choice.casefold()]
    return (within or near)[:n]


def _small_edit(word: str, choice: str) -> bool:
    """What differs between the two, once their common start and end are set aside, is an insertion, a deletion or
    a short or similar stretch: a typo, not another value."""
    start = len(_common_start([word, choice]))
    end = 0
    while end < min(len(word), len(choice)) - start and word[-1 - end] == choice[-1 - end]:
        end += 1
    left, right = word[start:len(word) - end], choice[start:len(choice) - end]
    return (not left or not right or max(len(left), len(right)) <= 2
            or difflib.SequenceMatcher(None, left, right).ratio() >= 0.5)


def _common_start(texts: Sequence[str]) -> str:
    """The longest start all `texts` share (that of the first and last in order is every one's)."""
    first, last = min(texts, default=""), max(texts, default="")
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


def did_you_mean(word: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.75) -> str:
    """` (did you mean 'x'?)`, ` (did you mean 'x' or 'y'?)`, or "" when nothing is near."""
    found = closest(word, choices, n, cutoff)
    return f" (did you mean {_alternatives(found)}?)" if found else ""


def _alternatives(values: Sequence[str]) -> str:
    quoted = [repr(value) for value in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def not_one_of(value: str, allowed: Sequence[str], kind: str) -> str:
    """Why `value` is refused by an enum of `kind` (a shape's name): the whole set when short, else the closest
    values, else the set's families (`ml.FAMILY.SIZE`) or its first values."""
    near = closest(value, allowed, n=3)
    hint = f"; did you mean {_alternatives(near)}?" if near else ""
    if len(allowed) <= LISTED_VALUES:
        return f"is not one of {', '.join(allowed)}{hint}"
    return f"is not one of the {len(allowed)} values of {kind}{hint or '; ' + _overview(allowed)}"


def _overview(allowed: Sequence[str]) -> str:
    """Many values in a line: their families when the values are PREFIX.FAMILY.SIZE (instance types), else the first
    dozen."""
    prefix = _common_start(allowed)
    prefix = prefix[:prefix.rfind(".") + 1]
    rests = [value[len(prefix):] for value in allowed]
    families = sorted({rest.rpartition(".")[0] for rest in rests}, key=_natural)
    if prefix and all("." in rest for rest in rests) and 1 < len(families) <= len(allowed) // 2:
        return f"each {prefix}FAMILY.SIZE, FAMILY one of {', '.join(families)}"
    return f"e.g. {', '.join(allowed[:LISTED_VALUES])}"


def _natural(text: str) -> list[tuple[int, int | str]]:
    """Sort key that puts c5 before c18."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in _NATURAL.split(text) if part]


def pattern_reason(text: str, pattern: Any, kind: str) -> str | None:
    """Why `text`, which `pattern` (a compiled `regex` pattern) refuses, breaks the pattern of `kind` (a shape's name),
    in words: the characters it may not contain, or the one it may not start or end with.

    Found by repair: walk to the first character no match can have there, replace that character everywhere, and
    again until the text passes. None when no such repair exists (a malformed URI, an ARN of another form)."""
    if len(text) > _EXPLAINED_LENGTH or pattern.fullmatch(text):
        return None
    culprits: list[str] = []
    first = ""
    current = text
    for _ in range(_REPAIRS):
        bad = _first_bad(current, pattern)
        if bad is None:  # all it has could begin a match: it stops too early (`job-`)
            fixed = next((current[:-1] + f for f in _FILLERS if current and pattern.fullmatch(current[:-1] + f)), None)
            said = _said(fixed, culprits, pattern, first, current[-1]) if fixed is not None else None
        else:
            char = current[bad]
            current = next((c for c in (current.replace(char, f) for f in _FILLERS) if _progress(c, pattern, bad)), "")
            if not current:
                return None
            culprits.append(char)
            first = first or (char if bad == 0 else "")
            if not pattern.fullmatch(current):
                continue
            said = _said(current, culprits, pattern, first, "", both=len(text) > 1 and text.endswith(first))
        return f"{said}, which SageMaker's {kind} does not allow" if said else None
    return None


def _progress(text: str, pattern: Any, bad: int) -> bool:
    """A repair gets further: `text` passes, or its first bad character comes later than `bad`."""
    now = _first_bad(text, pattern)
    return bool(text) and (now is None or now > bad)


def _first_bad(text: str, pattern: Any) -> int | None:
    """The index of the first character no match of `pattern` can have there; None when `text` could begin one."""
    if pattern.fullmatch(text, partial=True):
        return None
    low, high = 0, len(text)  # text[:low] could begin a match, text[:high] could not
    while high - low > 1:
        middle = (low + high) // 2
        if pattern.fullmatch(text[:middle], partial=True):
            low = middle
        else:
            high = middle
    return high - 1


def _said(repaired: str, culprits: list[str], pattern: Any, first: str, ends: str, both: bool = False) -> str | None:
    """The words for what the repair changed: the characters the text may not contain, except one it starts with
    that may stand further in (`-job`; `both`: it ends with it too), and the one it may not end with (`job-`)."""
    base = repaired if len(repaired) >= 2 else (repaired or "a") * 2
    middle = len(base) // 2
    starts = first if first and pattern.fullmatch(base[:middle] + first + base[middle:]) else ""
    nowhere = [c for c in culprits if c != starts]
    said = [f"contains {_and(nowhere)}"] if nowhere else []
    said += [f"{'starts and ends' if both else 'starts'} with {_and([starts])}"] if starts else []
    said += [f"ends with {_and([ends])}"] if ends else []
    return " and ".join(said) or None


def _and(chars: Sequence[str]) -> str:
    names = [_CHAR_NAMES.get(c) or (repr(c) if c.isprintable() else f"'\\u{ord(c):04x}'") for c in chars]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

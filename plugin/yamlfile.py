"""Reading user files (task files, config) safely: YAML or JSON, bounded, every failure an InputError.

YAML is parsed with the safe loader, refusing custom tags (through the safe loader), duplicate keys (a silent
override is a typo waiting to happen) and alias-heavy documents (an alias bomb costs nothing to load and everything
to walk).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from handlers.errors import InputError, short_repr

MAX_FILE_BYTES = 1024 * 1024
MAX_ALIASES = 64
MAX_NODES = 100_000


def _expanded_size(node: Any, memo: dict[int, int]) -> int:
    """How many values the document has once every alias is expanded, counted without expanding anything."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = MAX_NODES + 1  # a cycle counts as too large
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(item, memo) for item in node.value)
    else:
        size = 1
    memo[id(node)] = size = min(size, MAX_NODES + 1)
    return size


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases and refuses duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_count = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise yaml.constructor.ConstructorError(
                    None, None, f"more than {MAX_ALIASES} aliases: refusing a possible alias bomb", event.start_mark
                )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a map key must be a plain value", key_node.start_mark
                ) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _construct_int(loader: _StrictLoader, node: Any) -> Any:
    """An integer too long for Python's int() stays text, so the field that holds it is named in the error."""
    try:
        return yaml.SafeLoader.construct_yaml_int(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)  # type: ignore[arg-type]
_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _StrictLoader.construct_mapping,  # type: ignore[arg-type]
)


def parse_text(text: str, where: str) -> Any:
    """YAML (a superset of JSON) text -> plain data, or InputError saying where it broke."""
    try:
        loader = _StrictLoader(text)
    except yaml.YAMLError as error:  # the reader refuses control characters before parsing starts
        raise InputError(f"{where}: not valid YAML or JSON: {error}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > MAX_NODES:
            raise InputError(f"{where}: expands to more than {MAX_NODES} values (aliases included): refusing it")
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = error.problem or error.context or "invalid YAML"
        raise InputError(f"{where}: not valid YAML or JSON{at}: {problem}") from None
    except yaml.YAMLError as error:
        raise InputError(f"{where}: not valid YAML or JSON: {error}") from None
    except RecursionError:
        raise InputError(f"{where}: nested too deeply") from None
    except InputError:
        raise
    except ValueError as error:  # e.g. an integer of thousands of digits
        raise InputError(f"{where}: a value cannot be read: {short_repr(str(error), 120)}") from None
    finally:
        loader.dispose()


def read_document(path: Path, what: str = "task", empty_ok: bool = False) -> Any:
    """A file's data, with errors that say which file and what is wrong with it."""
    try:
        if path.is_dir():
            raise InputError(f"{path}: is a folder, not a {what} file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path}: {size} bytes is too large for a {what} file (at most {MAX_FILE_BYTES})")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what} file") from None
    except PermissionError:
        raise InputError(f"{path}: not readable (permission denied)") from None
    except OSError as error:
        raise InputError(f"{path}: cannot be read: {error.strerror}") from None
    if b"\x00" in raw:
        raise InputError(f"{path}: is a binary file, not a YAML or JSON {what} file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: is not UTF-8 text (byte {error.start})") from None
    if not text.strip():
        if empty_ok:
            return None
        raise InputError(f"{path}: is empty; a {what} file must be a YAML or JSON map")
    return parse_text(text, str(path))

"""Reading user files (task files, config) safely: YAML or JSON, bounded, every failure an InputError.

YAML is parsed with the safe constructor, refusing custom tags, duplicate keys (a silent override is a typo waiting
to happen), alias-heavy documents (an alias bomb costs nothing to load and everything to walk) and documents with more
values than any task or config file needs. The values are counted while the document is composed, so a huge file is
refused after MAX_VALUES values, not after all of them have been parsed; the scanner and parser are libyaml's when
PyYAML has it (thirty times faster than PyYAML's own), the composer and constructor PyYAML's, so that the counting,
the alias limit and the duplicate-key check are the same either way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

try:
    from yaml._yaml import CParser
except ImportError:  # PyYAML built without libyaml
    CParser = None  # type: ignore[assignment,misc]

from handlers.errors import InputError, join_path, short_repr

MAX_FILE_BYTES = 1024 * 1024
MAX_ALIASES = 64
# A task file holds a few hundred values at most (SageMaker allows 50 tags, 100 hyperparameters, 20 channels, 40
# metric definitions), a config file a few thousand (prebuilt_algorithms: versions x regions).
MAX_VALUES = 10_000


def _expanded_size(node: Any, memo: dict[int, int]) -> int:
    """How many values the document has once every alias is expanded, counted without expanding anything."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = MAX_VALUES + 1  # a cycle counts as too large
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(item, memo) for item in node.value)
    else:
        size = 1
    memo[id(node)] = size = min(size, MAX_VALUES + 1)
    return size


class _TooManyValues(Exception):
    def __init__(self, mark: Any) -> None:
        super().__init__()
        self.mark = mark


class _Strict(yaml.composer.Composer, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """The safe constructor, with a composer that counts values and aliases as it goes; duplicate keys refused.

    A subclass adds the reader, scanner and parser; the composer comes before them, so that this compose_node (which
    counts) runs rather than libyaml's own.
    """

    # from the parser a subclass adds
    check_event: Callable[..., bool]
    peek_event: Callable[[], Any]
    dispose: Callable[[], None]

    def _start(self) -> None:
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self.alias_count = 0
        self.value_count = 0
        self.path: list[str | int] = []  # where the composer is, for the error

    def compose_node(self, parent: Any, index: Any) -> Any:
        named = isinstance(index, (yaml.ScalarNode, int))  # a map's value (named by its key) or a list's item
        if named:
            self.path.append(str(index.value)[:40] if isinstance(index, yaml.ScalarNode) else index)
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                event = self.peek_event()
                raise yaml.constructor.ConstructorError(
                    None, None, f"more than {MAX_ALIASES} aliases: refusing a possible alias bomb", event.start_mark
                )
        else:
            self.value_count += 1
            if self.value_count > MAX_VALUES:
                raise _TooManyValues(self.peek_event().start_mark)
        node = super().compose_node(parent, index)
        if named:  # popped only on success: after an error, the path says where the composer was
            self.path.pop()
        return node

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


def _construct_int(loader: _Strict, node: Any) -> Any:
    """An integer too long for Python's int() stays text, so the field that holds it is named in the error."""
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_Strict.add_constructor("tag:yaml.org,2002:int", _construct_int)  # type: ignore[arg-type,type-var]
_Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                        _Strict.construct_mapping)  # type: ignore[arg-type,type-var]


class _StrictPyLoader(_Strict, yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    """PyYAML's own reader, scanner and parser (pure Python): when PyYAML was built without libyaml."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        self._start()


_StrictLoader: Callable[[str], _Strict] = _StrictPyLoader
if CParser is not None:

    class _StrictCLoader(_Strict, CParser):
        """libyaml's scanner and parser."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            self._start()

    _StrictLoader = _StrictCLoader


def _unmarked_problem(text: str, error: yaml.YAMLError) -> str:
    """A character the reader refuses, named with its line and column (both readers count positions differently)."""
    if not isinstance(error, yaml.reader.ReaderError) or not isinstance(error.character, int):
        return str(error)
    at = text.find(chr(error.character))
    where = ""
    if at >= 0:
        line = text.count("\n", 0, at)
        where = f" at line {line + 1}, column {at - (text.rfind(chr(10), 0, at) + 1) + 1}"
    return f"character U+{error.character:04X}{where} is not allowed ({error.reason})"


def _under(loader: _Strict) -> str:
    """Where the composer was when it stopped, e.g. ` (under inputs.train)`; nothing while constructing."""
    path = functools.reduce(join_path, loader.path[:8], "") + ("..." if len(loader.path) > 8 else "")
    return f" (under {path})" if path else ""


def parse_text(text: str, where: str, loader_class: Callable[[str], _Strict] | None = None) -> Any:
    """YAML (a superset of JSON) text -> plain data, or InputError saying where it broke."""
    try:
        loader = (loader_class or _StrictLoader)(text)
    except yaml.YAMLError as error:  # PyYAML's reader refuses control characters before parsing starts
        raise InputError(f"{where}: not valid YAML or JSON: {_unmarked_problem(text, error)}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > MAX_VALUES:
            raise InputError(f"{where}: expands to more than {MAX_VALUES} values (aliases included): refusing it")
        return loader.construct_document(node)
    except _TooManyValues as error:
        raise InputError(f"{where}: more than {MAX_VALUES} values, the most a task or config file may hold; the "
                         f"first beyond the limit is at line {error.mark.line + 1}, column {error.mark.column + 1}"
                         f"{_under(loader)}: refusing it") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = error.problem or error.context or "invalid YAML"
        if "nesting depth" in problem:  # libyaml's own limit (1000 levels): PyYAML's ends in RecursionError
            raise InputError(f"{where}: nested too deeply{at}") from None
        raise InputError(f"{where}: not valid YAML or JSON{at}{_under(loader)}: {problem}") from None
    except yaml.YAMLError as error:  # libyaml's reader refuses control characters as it reads
        raise InputError(f"{where}: not valid YAML or JSON: {_unmarked_problem(text, error)}") from None
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

"""YAML loading that remembers where every key came from, so errors can name file:line and key path.

Shared by the service config and the intent map: a bad file is refused with the file, the line, the
key path (``ari.url``, ``intents[2].slots[0].type``) and the reason, never with a traceback. Stricter
than YAML itself: a key said twice in one mapping is refused (YAML keeps the last one silently, so a
second ``phrases:`` would drop the first list), and a file that is not UTF-8 is refused with the line
and byte offset of the first bad byte (``decode_utf8``, also used for caller scripts and ``classify``).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ari_agent.errors import ConfigError

KeyPath = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


def format_key_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class BadKey(Exception):
    """A mapping key that cannot be taken: said twice (YAML would keep the last one silently), or a
    list or mapping used as a key."""

    def __init__(self, path: KeyPath, line: int, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.line = line
        self.reason = reason


class LineIndex:
    """Maps key paths to the 1-based line where that key (or list item) starts."""

    def __init__(self) -> None:
        self._lines: dict[KeyPath, int] = {}

    def add(self, path: KeyPath, line: int) -> None:
        self._lines.setdefault(path, line)

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """The line of the longest known prefix of ``path``."""
        p = tuple(path)
        while p:
            if p in self._lines:
                return self._lines[p]
            p = p[:-1]
        return self._lines.get((), None)

    def walk(self, node: yaml.Node, path: KeyPath) -> Any:
        self.add(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            first_lines: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = yaml.safe_load(yaml.serialize(key_node)) if not isinstance(key_node, yaml.ScalarNode) \
                    else _construct_scalar(key_node)
                child = (*path, str(key))
                key_line = key_node.start_mark.line + 1
                if not isinstance(key, Hashable):
                    raise BadKey(path, key_line, "a key must be a plain value, not a list or mapping")
                if key in first_lines:
                    raise BadKey(child, key_line, f"duplicate key (first at line {first_lines[key]}): "
                                                  "YAML would silently keep only the last one")
                first_lines[key] = key_line
                self.add(child, key_line)
                out[key] = self.walk(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
        return _construct_scalar(node)


def _construct_scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def load_yaml(path: str | Path) -> tuple[Any, LineIndex]:
    """Parse a YAML file; syntax errors become ConfigError with the file and line."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(p), "", "file not found") from None
    except OSError as exc:
        raise ConfigError(str(p), "", f"cannot read file: {exc.strerror or exc}") from None
    try:
        text = decode_utf8(data)
    except NotUtf8 as exc:
        raise ConfigError(str(p), "", str(exc), line=exc.line) from None
    return load_yaml_text(text, str(p))


class NotUtf8(ValueError):
    """Bytes that are not UTF-8: where the first bad byte is (0-based offset, 1-based line)."""

    def __init__(self, offset: int, line: int, byte: int) -> None:
        super().__init__(f"not valid UTF-8 (byte 0x{byte:02x} at byte offset {offset})")
        self.offset = offset
        self.line = line
        self.byte = byte


def decode_utf8(data: bytes, *, base_offset: int = 0, base_line: int = 1) -> str:
    """``data`` decoded as UTF-8 (a leading byte-order mark dropped), or NotUtf8 naming the first bad
    byte. ``base_offset``/``base_line`` place ``data`` inside a longer stream read piece by piece."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = base_line + data.count(b"\n", 0, exc.start)
        raise NotUtf8(base_offset + exc.start, line, data[exc.start]) from None
    return text.removeprefix("\ufeff") if base_offset == 0 else text


def load_yaml_text(text: str, file: str) -> tuple[Any, LineIndex]:
    index = LineIndex()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise ConfigError(file, "", f"invalid YAML: {exc.problem}", line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, "", f"invalid YAML: {exc}") from None
    if node is None:
        return {}, index
    try:
        return index.walk(node, ()), index
    except BadKey as exc:
        raise ConfigError(file, format_key_path(exc.path), exc.reason, line=exc.line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, "", f"invalid YAML value: {exc}") from None


def validate(model: type[M], data: Any, file: str, index: LineIndex | None = None) -> M:
    """Validate ``data`` against ``model``; the first error becomes a ConfigError naming its key path."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [p for p in err["loc"] if isinstance(p, (str, int))]
        line = index.line_of(loc) if index is not None else None
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check spelling)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        raise ConfigError(file, format_key_path(loc), msg, line=line) from None

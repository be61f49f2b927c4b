"""YAML loading that remembers where every key came from, so errors can name file:line and key path.

Shared by the service config and the intent map: a bad file is refused with the file, the line, the
key path (``ari.url``, ``intents[2].slots[0].type``) and the reason, never with a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
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
            for key_node, value_node in node.value:
                key = yaml.safe_load(yaml.serialize(key_node)) if not isinstance(key_node, yaml.ScalarNode) \
                    else _construct_scalar(key_node)
                child = (*path, str(key))
                self.add(child, key_node.start_mark.line + 1)
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
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(p), "", f"cannot read file: {exc}") from None
    return load_yaml_text(text, str(p))


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

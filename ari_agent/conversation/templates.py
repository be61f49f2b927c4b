"""Response templates: plain text with ``{placeholders}``.

A placeholder names a slot (``{order_number}``), a field of the tool results (``{result.status}``),
a field of the verified identity (``{identity.customer_id}``) or a map-wide value
(``{business_hours}``, ``{business_name}``). Doubled braces ``{{`` / ``}}`` are literal braces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")
GLOBAL_NAMES = frozenset({"business_hours", "business_name"})
NAMESPACES = frozenset({"result", "identity"})


class TemplateError(ValueError):
    """A template is malformed or refers to a value that is not there."""


def placeholders(template: str) -> list[str]:
    """The placeholder names in ``template`` in order; raises TemplateError if it is malformed."""
    names: list[str] = []
    for m in _PLACEHOLDER.finditer(template):
        tok = m.group(0)
        if tok in ("{{", "}}"):
            continue
        if m.group(1) is None:
            raise TemplateError(f"unbalanced '{tok}' at character {m.start() + 1}")
        name = m.group(1).strip()
        if not _NAME.match(name):
            raise TemplateError(f"bad placeholder '{{{m.group(1)}}}' (use {{slot}}, {{result.field}}, "
                                "{identity.field})")
        names.append(name)
    return names


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill ``template`` from ``values`` (keys as placeholders spell them); raises TemplateError on a
    missing value."""

    def fill(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok == "{{":
            return "{"
        if tok == "}}":
            return "}"
        if m.group(1) is None:
            raise TemplateError(f"unbalanced '{tok}'")
        name = m.group(1).strip()
        if name not in values:
            raise TemplateError(f"no value for '{name}'")
        return values[name]

    return _PLACEHOLDER.sub(fill, template)

"""Secret references in tool config: ``${secret:NAME}`` resolved from ``ARI_AGENT_SECRET_<NAME>``.

Secrets are allowed in header values only (never in URLs, which end up in logs and job payloads),
are resolved at the last moment (RQ job payloads keep the reference, the worker resolves it from its
own environment), and are never logged: errors name the environment variable, not the value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

SECRET_ENV_PREFIX = "ARI_AGENT_SECRET_"
SECRET_REF = re.compile(r"\$\{secret:([A-Za-z][A-Za-z0-9_]*)\}")
ANY_REF = re.compile(r"\$\{([^}]*)\}")


class MissingSecretError(LookupError):
    """A referenced secret is not set; carries the name and env var, never a value."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.env_var = secret_env_var(name)
        super().__init__(f"secret {name!r} is not set (environment variable {self.env_var})")


def secret_env_var(name: str) -> str:
    return SECRET_ENV_PREFIX + name.upper()


def secret_names(template: str) -> list[str]:
    return SECRET_REF.findall(template)


def check_template(template: str) -> str | None:
    """Why ``template`` is malformed (an unknown ``${...}`` reference), or None when it is fine."""
    for m in ANY_REF.finditer(template):
        if not SECRET_REF.fullmatch(m.group(0)):
            return f"unknown reference ${{{m.group(1)}}} (only ${{secret:NAME}} is supported)"
    return None


def resolve_template(template: str, env: Mapping[str, str] | None = None) -> str:
    """Replace every ``${secret:NAME}``; raise MissingSecretError for an unset or empty one."""
    source = os.environ if env is None else env

    def _sub(m: re.Match[str]) -> str:
        value = source.get(secret_env_var(m.group(1)))
        if not value:
            raise MissingSecretError(m.group(1))
        return value

    return SECRET_REF.sub(_sub, template)


def resolve_headers(templates: Mapping[str, str], env: Mapping[str, str] | None = None) -> dict[str, str]:
    return {name: resolve_template(value, env) for name, value in templates.items()}


def redact(text: str, secret_values: list[str]) -> str:
    """``text`` with every secret value replaced by ``***`` (for error strings from libraries)."""
    for value in sorted(secret_values, key=len, reverse=True):
        if value:
            text = text.replace(value, "***")
    return text

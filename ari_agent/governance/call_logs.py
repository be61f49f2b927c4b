"""Stored call logs: each call's event log (what the agent said, heard, keyed, called and decided),
redacted before it is stored, sealed when ``storage.encrypt_at_rest`` is on, and read back.

One file per call: ``<storage.call_logs_dir>/<call id>/events.jsonl`` (``.enc`` when sealed: AES-256-GCM
bound to the call id, ``governance/at_rest.py``), mode 0600, written atomically at the end of the call
(``storage.store_call_logs``). ``ari-agent retention run`` deletes it once older than
``storage.retention_days``; ``ari-agent storage show-log CALL_ID`` prints it (decrypting).

Redaction (pure, :func:`redact_entries`), before anything reaches the disk:

- every string the caller could have put there (what was heard, a barge-in's words, tool arguments and
  results, a transfer's context) goes through :class:`~ari_agent.redaction.Redactor` (cards, CVVs, ids,
  dates of birth, emails, phones, account numbers ..., and the configured extra patterns);
- values under a sensitive name (``pin``, ``postcode``, ``dob``, ``answer``, ``card`` ...: the audit log's
  rule, ``governance/records.py``) are replaced whole by ``[REDACTED]``, at any depth;
- what the caller said or keyed to a sensitive slot (the map's verification slots, or a slot with a
  sensitive name) is ``[REDACTED]``: the turn after a ``listen`` for that slot; so are the agent's
  read-back of such an answer ("I have ... Is that right?", said before the yes/no listen for the slot)
  and all arguments of the verification tool;
- fields the agent itself writes (``kind``, ``t``, the listen's expectation, the tool's name, the
  idempotency key, ``ok``) are kept as they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from ari_agent.config import Config
from ari_agent.governance.at_rest import SEALED_SUFFIX, AtRestError, Sealer, load_sealer, recording_aad
from ari_agent.governance.records import SENSITIVE_NAME
from ari_agent.redaction import Redactor

CALL_LOG_NAME = "events.jsonl"
REDACTED = "[REDACTED]"
# Written by the agent, never by the caller: kept verbatim (a call id or key is not an account number).
_VERBATIM = frozenset({"t", "kind", "expect", "detail", "name", "key", "timeout_s", "queue", "ok", "error",
                       "submitted", "confidence", "prompt_id", "interruptible", "stt_ms", "speculative", "unsure"})
# Entries whose content is the caller's answer to the question just asked.
_ANSWERS = frozenset({"heard", "dtmf", "barge_in"})
_SLOT_IN_DETAIL = re.compile(r"\bslot ([a-z][a-z0-9_]*)")
_CALL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


class CallLogError(AtRestError):
    """A stored call log that cannot be found or read."""


def redact_entries(entries: Iterable[Mapping[str, Any]], redactor: Redactor, *,
                   sensitive_slots: Iterable[str] = (), sensitive_tools: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The entries as they may be stored (see the module doc); the input is not changed."""
    slots, tools = frozenset(sensitive_slots), frozenset(sensitive_tools)
    items = list(entries)

    def sensitive_listen(e: Mapping[str, Any]) -> bool:
        m = _SLOT_IN_DETAIL.search(str(e.get("detail") or ""))
        return m is not None and (m.group(1) in slots or bool(SENSITIVE_NAME.search(m.group(1))))

    # A read-back ("I have S W 1 A 1 A A. Is that right?") is said just before a yes/no listen for the slot.
    read_backs: set[int] = set()
    for i, e in enumerate(items):
        if e.get("kind") == "listen" and e.get("expect") == "yes_no" and sensitive_listen(e):
            j = i - 1
            while j >= 0 and items[j].get("kind") == "say":
                read_backs.add(j)
                j -= 1
    out: list[dict[str, Any]] = []
    answering_sensitive = False
    for i, entry in enumerate(items):
        kind = entry.get("kind")
        if kind == "listen":
            answering_sensitive = sensitive_listen(entry)
        clean: dict[str, Any] = {}
        for key, value in entry.items():
            if key in _VERBATIM:
                clean[key] = value
            elif (answering_sensitive and kind in _ANSWERS) or (kind == "tool" and key == "args"
                                                                 and entry.get("name") in tools) or (
                    i in read_backs and key == "text"):
                clean[key] = _blank(value)
            else:
                clean[key] = _redact_value(key, value, redactor)
        out.append(clean)
    return out


def _blank(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): REDACTED for k in value}
    return REDACTED if value not in (None, "") else value


def _redact_value(key: str, value: Any, redactor: Redactor) -> Any:
    if SENSITIVE_NAME.search(key) and value not in (None, ""):
        return _blank(value)
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, Mapping):
        return {str(k): _redact_value(str(k), v, redactor) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(key, v, redactor) for v in value]
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    return redactor.redact(str(value))


@lru_cache(maxsize=4)
def _redactor(extra: tuple[tuple[str, str], ...]) -> Redactor:
    return Redactor(extra)


def config_redactor(cfg: Config) -> Redactor:
    """The redactor of stored logs: the built-in kinds, long numbers included, and ``redaction.extra_patterns``."""
    return _redactor(tuple((p.label, p.pattern) for p in cfg.redaction.extra_patterns))


def encode(entries: Sequence[Mapping[str, Any]]) -> bytes:
    """JSON lines, one entry per line."""
    return "".join(json.dumps(e, default=str, ensure_ascii=False) + "\n" for e in entries).encode("utf-8")


def call_log_dir(cfg: Config, call_id: str) -> Path:
    if not _CALL_ID.match(call_id):
        raise CallLogError(f"'{call_id}' is not a call id (letters, digits and _.:- only)")
    return cfg.storage.call_logs_dir / call_id


def find_call_log(cfg: Config, call_id: str) -> Path:
    """The stored log of ``call_id`` (sealed or plain); CallLogError when there is none."""
    base = call_log_dir(cfg, call_id) / CALL_LOG_NAME
    for path in (base.with_name(base.name + SEALED_SUFFIX), base):
        if path.is_file() and not path.is_symlink():
            return path
    raise CallLogError(f"no stored call log for call '{call_id}' under {cfg.storage.call_logs_dir}")


def read_call_log(path: Path, sealer: Sealer | None, call_id: str | None = None) -> list[dict[str, Any]]:
    """The entries of a stored log; a sealed one (``.enc``) is opened with ``sealer``, bound to its call id
    (default: its directory's name). CallLogError on a file that cannot be read or parsed."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CallLogError(f"cannot read {path}: {exc.strerror or exc}") from None
    if path.name.endswith(SEALED_SUFFIX):
        if sealer is None:
            raise CallLogError(f"{path} is encrypted: set storage.encryption_key_file or "
                               "ARI_AGENT__STORAGE__ENCRYPTION_KEYS to read it")
        data = sealer.open(data, recording_aad(call_id or path.parent.name))
    entries: list[dict[str, Any]] = []
    for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CallLogError(f"{path}:{n}: not a JSON line ({exc.msg})") from None
        if not isinstance(entry, dict):
            raise CallLogError(f"{path}:{n}: not an event (a JSON object)")
        entries.append(entry)
    return entries


def storage_sealer(cfg: Config) -> Sealer | None:
    """The sealer that opens stored logs: the configured keys even when new logs are no longer sealed
    (old ones still are); None when no key is configured."""
    storage = cfg.storage
    if storage.encryption_key_file is None and storage.encryption_keys is None:
        return None
    return load_sealer(cfg.model_copy(update={"storage": storage.model_copy(update={"encrypt_at_rest": True})}))

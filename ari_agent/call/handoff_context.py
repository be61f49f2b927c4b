"""What a human agent gets with a handed-off caller: short channel variables plus the full record.

Pure. Channel variables have size limits and show up in CDRs and dialplan logs, so they carry only
short, redacted values and the Redis key of the full record; the record (JSON, in Redis under the
call id) holds the summary, verification, slots and the transcript so far. Everything the caller said
or the conversation wrote down passes through :func:`ari_agent.redaction.redact` first.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ari_agent.redaction import redact

VAR_PREFIX = "__ARI_AGENT_"
KEY_PREFIX = "ari-agent:handoff:"
SUMMARY_MAX = 500
SLOTS_MAX = 400
_RENAMED = {"verified_identity": "verified"}
_NOT_A_VARIABLE = {"caller_id"}  # already on the channel (CALLERID); kept in the record


def context_key(call_id: str) -> str:
    return KEY_PREFIX + call_id


def _var_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", _RENAMED.get(key, key)).strip("_").upper()


def slots_of(context: Mapping[str, str], extra: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """The ``slot.<name>`` entries of a Transfer's context, redacted."""
    return {k[5:]: redact(str(v), extra_patterns=extra) for k, v in context.items() if k.startswith("slot.")}


def handoff_variables(reason: str, context: Mapping[str, str], *, call_id: str | None = None,
                      tried: Sequence[str] = (), extra_patterns: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """Channel variables for a handoff: ``__ARI_AGENT_<KEY>`` (the ``__`` makes the queue member's
    channel inherit them). Keys are made safe for the dialplan, values redacted and bounded."""
    out = {f"{VAR_PREFIX}INTENT": "", f"{VAR_PREFIX}SUMMARY": "", f"{VAR_PREFIX}VERIFIED": "none"}
    for key, value in context.items():
        if key in _NOT_A_VARIABLE:
            continue
        safe = _var_name(key)
        if safe:
            out[f"{VAR_PREFIX}{safe}"] = redact(str(value), extra_patterns=extra_patterns)[:SUMMARY_MAX]
    slots = slots_of(context, extra_patterns)
    if slots:
        out[f"{VAR_PREFIX}SLOTS"] = compact_json(slots, SLOTS_MAX)
    out[f"{VAR_PREFIX}REASON"] = reason
    if call_id is not None:
        out[f"{VAR_PREFIX}CALL_ID"] = call_id
        out[f"{VAR_PREFIX}CONTEXT_KEY"] = context_key(call_id)
    if tried:
        out[f"{VAR_PREFIX}TRIED"] = ",".join(dict.fromkeys(tried))
    return out


def compact_json(value: Mapping[str, str], limit: int) -> str:
    """Compact JSON of ``value`` within ``limit`` characters: entries that do not fit are dropped
    (never a cut-off, unparseable string)."""
    kept: dict[str, str] = {}
    for k, v in value.items():
        trial = {**kept, k: v}
        if len(json.dumps(trial, separators=(",", ":"), ensure_ascii=False)) > limit:
            continue
        kept = trial
    return json.dumps(kept, separators=(",", ":"), ensure_ascii=False)


def transcript_from_log(entries: Iterable[Mapping[str, Any]],
                        extra_patterns: Sequence[tuple[str, str]] = ()) -> list[dict[str, str]]:
    """The call's words so far from its event log (``say`` = agent, ``heard`` = caller, ``dtmf`` =
    keypad), redacted. Other entries are skipped; malformed ones too."""
    out: list[dict[str, str]] = []
    for e in entries:
        if not isinstance(e, Mapping):
            continue
        kind = e.get("kind")
        if kind == "say" and isinstance(e.get("text"), str):
            out.append({"who": "agent", "text": redact(e["text"], extra_patterns=extra_patterns)})
        elif kind == "heard" and isinstance(e.get("text"), str) and e["text"].strip():
            out.append({"who": "caller", "text": redact(e["text"], extra_patterns=extra_patterns)})
        elif kind == "dtmf" and isinstance(e.get("digits"), str):
            out.append({"who": "caller", "text": redact(f"(keypad) {e['digits']}", extra_patterns=extra_patterns)})
    return out


def handoff_record(call_id: str, queue: str, reason: str, context: Mapping[str, str], *,
                   caller_number: str = "", caller_name: str = "", transcript: Sequence[Mapping[str, str]] = (),
                   requested_queue: str | None = None, rerouted_because: str = "",
                   extra_patterns: Sequence[tuple[str, str]] = (), now: float | None = None) -> dict[str, Any]:
    """The full context stored in Redis under :func:`context_key`."""
    def r(text: object) -> str:
        return redact(str(text), extra_patterns=extra_patterns)

    return {
        "call_id": call_id,
        "queue": queue,
        "requested_queue": requested_queue or queue,
        "rerouted_because": rerouted_because,
        "reason": reason,
        "intent": str(context.get("intent", "")),
        "summary": r(context.get("summary", "")),
        "verification": r(context.get("verified_identity", context.get("verified", "none"))),
        "caller_id": caller_number or str(context.get("caller_id", "")),
        "caller_name": caller_name,
        "slots": slots_of(context, extra_patterns),
        "transcript": [dict(t) for t in transcript],
        "stored_at": time.time() if now is None else now,
    }


def brief_text(record: Mapping[str, Any], max_words: int = 30) -> str:
    """The spoken brief a warm transfer plays to the answering human: who, what, why, verified.
    Built from the (already redacted) record; the summary is cut to ``max_words`` words."""
    def spoken(value: object) -> str:
        return str(value or "").replace("_", " ").strip()

    parts = [f"Caller from the voice agent for {spoken(record.get('queue')) or 'this queue'}."]
    if record.get("intent"):
        parts.append(f"Intent: {spoken(record['intent'])}.")
    if record.get("reason"):
        parts.append(f"Reason: {spoken(record['reason'])}.")
    summary = " ".join(str(record.get("summary", "")).replace(";", ",").split()[:max_words])
    if summary:
        parts.append(f"Summary: {summary}.")
    parts.append(f"Verification: {spoken(record.get('verification')) or 'none'}.")
    return " ".join(parts)

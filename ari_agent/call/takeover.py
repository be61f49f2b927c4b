"""A supervisor taking a call over from the agent (human override): the request and its answer, as
they travel over Redis between the screen-pop and the agent process that serves the call.

Pure. A request names the call, the supervisor, and where the caller goes: one of the configured
queues, or an interface (``PJSIP/1001``, ``Local/desk@ctx/n``) that the dialplan's ``takeover``
extension dials. Anything else is refused here, before it reaches a channel variable or the dialplan.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass
from typing import Any

TAKEOVER_CHANNEL = "ari-agent:takeover"  # requests (screen-pop -> agents)
RESULT_CHANNEL = "ari-agent:takeover:results"  # answers (agent -> screen-pop)
TAKEOVER_EXTENSION = "takeover"  # dialplan/handoff.conf
TAKEOVER_REASON = "supervisor_takeover"
INTERFACE_VARIABLE = "__ARI_AGENT_TAKEOVER_INTERFACE"
BY_VARIABLE = "__ARI_AGENT_TAKEOVER_BY"
_INTERFACE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,19}/[A-Za-z0-9@._+/-]{1,120}$")
_NAME = re.compile(r"^[A-Za-z0-9_.@:-]{1,100}$")


class TakeoverError(ValueError):
    """A takeover request that cannot be carried out as written."""


def valid_interface(text: str) -> bool:
    return bool(_INTERFACE.match(text))


@dataclass(frozen=True)
class TakeoverRequest:
    call_id: str
    by: str  # the supervisor's sign-in name
    queue: str = ""  # one of these two
    interface: str = ""
    request_id: str = ""

    @property
    def target(self) -> str:
        """The handoff context extension: the queue, or ``takeover`` for an interface."""
        return TAKEOVER_EXTENSION if self.interface else self.queue

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def new(cls, call_id: str, by: str, *, queue: str = "", interface: str = "") -> TakeoverRequest:
        req = cls(call_id, by, queue, interface, "tk-" + secrets.token_hex(8))
        req.check()
        return req

    @classmethod
    def from_json(cls, raw: str | bytes) -> TakeoverRequest:
        try:
            data: Any = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise TakeoverError("not JSON") from None
        if not isinstance(data, dict):
            raise TakeoverError("not a JSON object")
        fields = {k: data.get(k, "") for k in ("call_id", "by", "queue", "interface", "request_id")}
        if not all(isinstance(v, str) for v in fields.values()):
            raise TakeoverError("every field is a string")
        req = cls(**fields)
        req.check()
        return req

    def check(self) -> None:
        for name in ("call_id", "by", "request_id"):
            value = getattr(self, name)
            if name != "request_id" or value:
                if not _NAME.match(value):
                    raise TakeoverError(f"{name}: missing or not a plain name")
        if bool(self.queue) == bool(self.interface):
            raise TakeoverError("name a queue or an interface (one of them)")
        if self.queue and not _NAME.match(self.queue):
            raise TakeoverError("queue: not a plain name")
        if self.interface and not valid_interface(self.interface):
            raise TakeoverError("interface: expected TECH/resource, e.g. PJSIP/1001")


@dataclass(frozen=True)
class TakeoverResult:
    request_id: str
    call_id: str
    ok: bool
    detail: str  # "handed to billing", "the caller has hung up", ...

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> TakeoverResult | None:
        try:
            data = json.loads(raw)
            return cls(str(data["request_id"]), str(data["call_id"]), bool(data["ok"]), str(data["detail"]))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None

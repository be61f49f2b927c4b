"""Sign-in for the agent's web pages (screen-pop, KPI dashboard): scrypt password check, session cookie,
lock-out after repeated failures.

A session is a random token in an HttpOnly, SameSite=Strict cookie, valid for ``ttl_s`` and only while
the account still exists. A name with ``MAX_FAILURES`` failed sign-ins within ``FAILURE_WINDOW_S`` is
refused for ``LOCKOUT_S`` after the last one. An unknown name is checked against a dummy hash, so that a
wrong name costs as long as a wrong password (no account enumeration by timing).

A form that changes something carries ``csrf_token(request)`` (an HMAC of the session token under a
per-process secret) and is accepted only with it (``csrf_ok``), on top of the SameSite=Strict cookie.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from ari_agent.ops.screenpop.passwords import verify_password

MAX_FAILURES, FAILURE_WINDOW_S, LOCKOUT_S = 5, 300.0, 60.0
DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "="

Verdict = Literal["ok", "locked", "wrong"]


@dataclass
class _Session:
    user: str
    expires: float


class SignIn:
    """``accounts()``: name → scrypt hash, read at each check (accounts removed from the config end
    their sessions)."""

    def __init__(self, cookie: str, accounts: Callable[[], Mapping[str, str]], *, ttl_s: float,
                 secure_cookie: bool = False) -> None:
        self.cookie = cookie
        self.accounts = accounts
        self.ttl_s = ttl_s
        self.secure_cookie = secure_cookie
        self.sessions: dict[str, _Session] = {}
        self.failures: dict[str, list[float]] = {}
        self._csrf_secret = secrets.token_bytes(32)

    def user(self, request: web.Request) -> str | None:
        """The signed-in name of ``request``, or None (an expired or orphaned session is dropped)."""
        token = request.cookies.get(self.cookie, "")
        session = self.sessions.get(token) if token else None
        if session is None:
            return None
        if session.expires < time.monotonic() or session.user not in self.accounts():
            self.sessions.pop(token, None)
            return None
        return session.user

    def csrf_token(self, request: web.Request) -> str:
        """The token the signed-in session's forms carry ("" without a session)."""
        token = request.cookies.get(self.cookie, "")
        if not token or token not in self.sessions:
            return ""
        return hmac.new(self._csrf_secret, token.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, request: web.Request, given: str) -> bool:
        expected = self.csrf_token(request)
        return bool(expected) and hmac.compare_digest(expected, given)

    async def check(self, name: str, password: str) -> Verdict:
        now = time.monotonic()
        recent = [t for t in self.failures.get(name, []) if now - t < FAILURE_WINDOW_S]
        self.failures[name] = recent
        if len(recent) >= MAX_FAILURES and now - recent[-1] < LOCKOUT_S:
            return "locked"
        stored = self.accounts().get(name)
        ok = await asyncio.to_thread(verify_password, password, stored or DUMMY_HASH)  # scrypt: off the loop
        if stored is None or not ok:
            recent.append(now)
            return "wrong"
        self.failures.pop(name, None)
        return "ok"

    def start_session(self, name: str, to: str = "/") -> web.HTTPSeeOther:
        """The redirect (to raise) that carries a new session's cookie."""
        token = secrets.token_urlsafe(32)
        self.sessions[token] = _Session(name, time.monotonic() + self.ttl_s)
        resp = web.HTTPSeeOther(to)
        resp.set_cookie(self.cookie, token, httponly=True, samesite="Strict", path="/", secure=self.secure_cookie,
                        max_age=int(self.ttl_s))
        return resp

    def end_session(self, request: web.Request, to: str = "/login") -> web.HTTPSeeOther:
        self.sessions.pop(request.cookies.get(self.cookie, ""), None)
        resp = web.HTTPSeeOther(to)
        resp.del_cookie(self.cookie, path="/")
        return resp

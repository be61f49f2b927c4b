"""Throttles across calls: brute force of identity checks, enumeration of records, call floods.

The engine's own limits are per call (``verification.attempts``, one recovery per step), so a caller
who hangs up and calls again starts afresh: 7 wrong postcodes over 4 calls, then the right one; or
order number after order number, each call hearing the status, carrier and date of other people's
orders. These counters live outside the call (a :class:`ThrottleStore`, Redis in production:
``ari_agent.governance.throttle_store``) and decide, with no I/O of their own:

- **verification lock-out**: failed identity checks per caller ID and per account (the account the
  caller claimed, e.g. ``customer_id``) within ``verify_window_s``; at the limit both are locked for
  ``lockout_s`` and every verification attempt in that time hands off (``verification_failed``)
  before the verification tool is called, right details or not. A success does not clear the count.
- **enumeration**: lookups of unknown records (a step tool answering ``not_found``) per caller, and
  lookups of any record, within ``lookup_window_s``; a found record does not reset the miss count.
  At the limit the caller is locked: this call hands off (``policy``), and so does every new call
  from that caller ID for ``lockout_s``.
- **call rate**: calls per caller ID per hour; past the limit a call goes straight to a person.

Every decision that stops the caller is a :class:`Trip`, passed to ``on_trip`` (the policy event:
logged and counted by the caller of this module) and returned to the engine, which hands off with
the trip's condition and detail. Caller IDs and account numbers are personal data: keys carry a
hash of them (``subject_key``), never the number. Callers without a caller ID ("anonymous",
"restricted", "") share one bucket for verification and lookups (strict on purpose: withholding the
number must not reset the counters) and are not counted for the call rate.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ari_agent.conversation.intent_map import Condition

Rule = Literal["verification_caller", "verification_account", "unknown_lookups", "lookups", "call_rate",
               "caller_locked"]
ANONYMOUS = frozenset({"", "anonymous", "unknown", "restricted", "unavailable", "private"})
# Verification arguments that name the account being claimed, first match wins.
ACCOUNT_FIELDS = ("customer_id", "account_id", "account_number", "customer_number")


class ThrottleStore(Protocol):
    """Counters with windows and locks with a time to live, shared by every agent process."""

    def incr(self, key: str, window_s: int) -> int:
        """Add one to ``key`` and return its count; a new key expires ``window_s`` after its first hit."""
        ...

    def count(self, key: str) -> int:
        """The count of ``key`` (0 when absent or expired)."""
        ...

    def lock(self, key: str, ttl_s: int) -> None:
        """Set the lock ``key`` for ``ttl_s`` seconds."""
        ...

    def locked(self, key: str) -> bool:
        """True while the lock ``key`` is set."""
        ...


@dataclass(frozen=True)
class ThrottleRules:
    """Limits; defaults suit a small contact centre (one person rarely fails a check 3 times an hour)."""

    verify_failures_per_caller: int = 3
    verify_failures_per_account: int = 3
    verify_window_s: int = 3600
    unknown_lookups_per_caller: int = 3
    lookups_per_caller: int = 10
    lookup_window_s: int = 3600
    lockout_s: int = 3600
    calls_per_caller_per_hour: int = 20


@dataclass(frozen=True)
class Trip:
    """One throttle decision that stops the caller: a policy event."""

    rule: Rule
    condition: Condition
    detail: str
    call_id: str
    subject: str  # "caller:<hash>" or "account:<hash>": never the number itself
    count: int
    limit: int


def subject_key(kind: str, value: str) -> str:
    """``kind:<hash>`` of a caller ID or account: stable across processes, not the personal datum."""
    digest = hashlib.sha256(f"{kind}\0{value.strip().lower()}".encode()).hexdigest()[:20]
    return f"{kind}:{digest}"


def caller_subject(caller_id: str) -> str:
    cid = caller_id.strip().lower()
    return "caller:anonymous" if cid in ANONYMOUS else subject_key("caller", cid)


def account_of(args: Mapping[str, Any]) -> str | None:
    """The account a verification attempt claims (the first of :data:`ACCOUNT_FIELDS` it carries)."""
    for name in ACCOUNT_FIELDS:
        value = args.get(name)
        if value is not None and str(value).strip():
            return str(value)
    return None


def _minutes(seconds: int) -> str:
    return f"{max(1, round(seconds / 60))} min"


class Throttle:
    """The rules over a store, shared by all calls; :meth:`guard` gives one call its view."""

    def __init__(self, store: ThrottleStore, rules: ThrottleRules | None = None, *,
                 on_trip: Callable[[Trip], None] | None = None, namespace: str = "ari-agent:throttle") -> None:
        self.store = store
        self.rules = rules or ThrottleRules()
        self.on_trip = on_trip
        self.namespace = namespace

    def guard(self, call_id: str) -> CallGuard:
        return CallGuard(self, call_id)

    def key(self, counter: str, subject: str) -> str:
        return f"{self.namespace}:{counter}:{subject}"


@dataclass
class CallGuard:
    """One call's throttle hooks (the engine calls them; each returns a Trip to hand off, or None)."""

    throttle: Throttle
    call_id: str
    account: str | None = None  # the account of the last verification attempt (hashed subject)
    trips: list[Trip] = field(default_factory=list)

    # ------------------------------------------------------------------ hooks

    def call_started(self, caller_id: str) -> Trip | None:
        """At the start of a call: a caller locked for enumeration, or calling too often, goes to a person."""
        t, rules = self.throttle, self.throttle.rules
        caller = caller_subject(caller_id)
        if t.store.locked(t.key("lock-lookups", caller)):
            return self._trip("caller_locked", "policy", caller, 0, 0,
                              "this caller is locked out after looking up unknown records")
        if caller == "caller:anonymous":
            return None
        calls = t.store.incr(t.key("calls", caller), 3600)
        if calls > rules.calls_per_caller_per_hour:
            return self._trip("call_rate", "policy", caller, calls, rules.calls_per_caller_per_hour,
                              f"{calls} calls from this caller ID in the last hour")
        return None

    def before_verification(self, caller_id: str, args: Mapping[str, Any]) -> Trip | None:
        """Before the verification tool runs: a locked caller or account is handed off unchecked."""
        t, rules = self.throttle, self.throttle.rules
        caller = caller_subject(caller_id)
        account = account_of(args)
        self.account = subject_key("account", account) if account is not None else None
        checks: tuple[tuple[str | None, Rule, int, str], ...] = (
            (caller, "verification_caller", rules.verify_failures_per_caller, "caller"),
            (self.account, "verification_account", rules.verify_failures_per_account, "account"))
        for subject, rule, limit, who in checks:
            if subject is None:
                continue
            count = t.store.count(t.key("verify-fail", subject))
            if t.store.locked(t.key("lock-verify", subject)) or count >= limit:
                return self._trip(rule, "verification_failed", subject, count, limit,
                                  f"verification locked for this {who} after {count} failed checks; "
                                  f"try again in up to {_minutes(rules.lockout_s)}")
        return None

    def verification_failed(self, caller_id: str) -> Trip | None:
        """A failed identity check: counted for the caller and the account claimed; at a limit, lock both."""
        t, rules = self.throttle, self.throttle.rules
        caller = caller_subject(caller_id)
        n_caller = t.store.incr(t.key("verify-fail", caller), rules.verify_window_s)
        n_account = t.store.incr(t.key("verify-fail", self.account), rules.verify_window_s) if self.account else 0
        trip: Trip | None = None
        if n_caller >= rules.verify_failures_per_caller:
            trip = self._trip("verification_caller", "verification_failed", caller, n_caller,
                              rules.verify_failures_per_caller,
                              f"{n_caller} failed checks from this caller in {_minutes(rules.verify_window_s)}; "
                              f"locked for {_minutes(rules.lockout_s)}")
        elif self.account is not None and n_account >= rules.verify_failures_per_account:
            trip = self._trip("verification_account", "verification_failed", self.account, n_account,
                              rules.verify_failures_per_account,
                              f"{n_account} failed checks on this account in {_minutes(rules.verify_window_s)}; "
                              f"locked for {_minutes(rules.lockout_s)}")
        if trip is not None:
            t.store.lock(t.key("lock-verify", caller), rules.lockout_s)
            if self.account is not None:
                t.store.lock(t.key("lock-verify", self.account), rules.lockout_s)
        return trip

    def lookup_result(self, caller_id: str, *, found: bool) -> Trip | None:
        """A step tool answered (``found``: a record; else ``not_found``): count it; at a limit, lock."""
        t, rules = self.throttle, self.throttle.rules
        caller = caller_subject(caller_id)
        total = t.store.incr(t.key("lookups", caller), rules.lookup_window_s)
        misses = t.store.count(t.key("unknown", caller)) if found else \
            t.store.incr(t.key("unknown", caller), rules.lookup_window_s)
        trip: Trip | None = None
        if not found and misses >= rules.unknown_lookups_per_caller:
            trip = self._trip("unknown_lookups", "policy", caller, misses, rules.unknown_lookups_per_caller,
                              f"{misses} lookups of unknown records from this caller in "
                              f"{_minutes(rules.lookup_window_s)} (enumeration)")
        elif total > rules.lookups_per_caller:
            trip = self._trip("lookups", "policy", caller, total, rules.lookups_per_caller,
                              f"{total} record lookups from this caller in {_minutes(rules.lookup_window_s)}")
        if trip is not None:
            t.store.lock(t.key("lock-lookups", caller), rules.lockout_s)
        return trip

    # ------------------------------------------------------------------ internals

    def _trip(self, rule: Rule, condition: Condition, subject: str, count: int, limit: int, detail: str) -> Trip:
        trip = Trip(rule, condition, f"throttle {rule}: {detail}", self.call_id, subject, count, limit)
        self.trips.append(trip)
        if self.throttle.on_trip is not None:
            self.throttle.on_trip(trip)
        return trip


class MemoryStore:
    """A :class:`ThrottleStore` in this process's memory: the fallback when Redis is unreachable, and
    the store of unit tests (``clock`` injected, so windows pass without waiting)."""

    MAX_KEYS = 100_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._counts: dict[str, tuple[int, float]] = {}
        self._locks: dict[str, float] = {}

    def incr(self, key: str, window_s: int) -> int:
        now = self.clock()
        n, expires = self._counts.get(key, (0, 0.0))
        if expires <= now:
            n, expires = 0, now + window_s
        self._counts[key] = (n + 1, expires)
        if len(self._counts) > self.MAX_KEYS:
            self._prune(now)
        return n + 1

    def count(self, key: str) -> int:
        n, expires = self._counts.get(key, (0, 0.0))
        return n if expires > self.clock() else 0

    def lock(self, key: str, ttl_s: int) -> None:
        now = self.clock()
        self._locks[key] = max(self._locks.get(key, 0.0), now + ttl_s)
        if len(self._locks) > self.MAX_KEYS:
            self._prune(now)

    def locked(self, key: str) -> bool:
        return self._locks.get(key, 0.0) > self.clock()

    def _prune(self, now: float) -> None:
        self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        self._locks = {k: v for k, v in self._locks.items() if v > now}

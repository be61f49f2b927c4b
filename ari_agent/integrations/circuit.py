"""A per-tool circuit breaker: after N consecutive failures, calls fail fast for T seconds.

closed --N failures--> open --T elapsed--> half-open --trial succeeds--> closed
                                                 \\--trial fails--> open (another T)

In half-open exactly one trial call goes through; the others fail fast until it finishes. Failing
fast matters on a phone call: the engine gets ``circuit_open`` at once and hands the caller to a
person instead of leaving them in silence while a dead backend times out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, failure_threshold: int, open_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if failure_threshold < 1 or open_s <= 0:
            raise ValueError("failure_threshold >= 1 and open_s > 0 required")
        self.failure_threshold = failure_threshold
        self.open_s = open_s
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self.times_opened = 0

    @property
    def state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self.open_s:
            return CircuitState.HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def try_acquire(self) -> bool:
        """May a call go through now? Every True must be followed by one record_*/release call."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self._trial_in_flight:
            self._state = CircuitState.HALF_OPEN
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._trial_in_flight = False
        self._state = CircuitState.CLOSED

    def record_failure(self) -> None:
        self._failures += 1
        if self._trial_in_flight:  # the half-open trial failed: open for another open_s
            self._trial_in_flight = False
            self._open()
        elif self._state is CircuitState.CLOSED and self._failures >= self.failure_threshold:
            self._open()
        # else: a call that started before the circuit opened failed late; nothing changes

    def release(self) -> None:
        """The call ended without a verdict (cancelled): free the half-open trial slot."""
        self._trial_in_flight = False

    def _open(self) -> None:
        self.times_opened += 1
        self._state = CircuitState.OPEN
        self._opened_at = self._clock()

from __future__ import annotations

from ari_agent.integrations.circuit import CircuitBreaker, CircuitState


def state(cb: CircuitBreaker) -> CircuitState:
    return cb.state  # a call, so mypy does not carry a narrowed state across calls


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_n_consecutive_failures_only() -> None:
    clock = FakeClock()
    cb = CircuitBreaker(3, 30, clock=clock)
    for _ in range(2):
        assert cb.try_acquire()
        cb.record_failure()
    assert cb.try_acquire()
    cb.record_success()  # a success in between resets the count
    for _ in range(2):
        assert cb.try_acquire()
        cb.record_failure()
    assert state(cb) is CircuitState.CLOSED
    assert cb.try_acquire()
    cb.record_failure()
    assert state(cb) is CircuitState.OPEN and cb.times_opened == 1
    assert not cb.try_acquire()


def test_half_open_lets_one_trial_through_then_closes_on_success() -> None:
    clock = FakeClock()
    cb = CircuitBreaker(1, 10, clock=clock)
    assert cb.try_acquire()
    cb.record_failure()
    clock.now += 9.9
    assert not cb.try_acquire()
    clock.now += 0.1
    assert state(cb) is CircuitState.HALF_OPEN
    assert cb.try_acquire()  # the trial
    assert not cb.try_acquire()  # everyone else still fails fast
    cb.record_success()
    assert state(cb) is CircuitState.CLOSED
    assert cb.try_acquire() and cb.try_acquire()


def test_a_failed_trial_opens_again_for_another_period() -> None:
    clock = FakeClock()
    cb = CircuitBreaker(2, 5, clock=clock)
    for _ in range(2):
        cb.try_acquire()
        cb.record_failure()
    clock.now += 5
    assert cb.try_acquire()
    cb.record_failure()
    assert state(cb) is CircuitState.OPEN and cb.times_opened == 2
    clock.now += 4.9
    assert not cb.try_acquire()
    clock.now += 0.1
    assert cb.try_acquire()


def test_a_cancelled_trial_frees_the_slot() -> None:
    clock = FakeClock()
    cb = CircuitBreaker(1, 1, clock=clock)
    cb.try_acquire()
    cb.record_failure()
    clock.now += 1
    assert cb.try_acquire()
    cb.release()
    assert state(cb) is CircuitState.HALF_OPEN
    assert cb.try_acquire()


def test_late_failures_do_not_extend_an_open_circuit() -> None:
    clock = FakeClock()
    cb = CircuitBreaker(1, 10, clock=clock)
    assert cb.try_acquire() and cb.try_acquire()  # two calls in flight
    cb.record_failure()  # opens
    clock.now += 9
    cb.record_failure()  # the second call fails late
    clock.now += 1
    assert state(cb) is CircuitState.HALF_OPEN

"""WorkerSupervisor: workers that answer, crash, exit, hang or refuse; restarts; close.

Spawned workers live in ``fake_workers`` (a spawn child imports the target by module name); the
other-interpreter launcher runs a self-contained function of this module with this interpreter.
"""

from __future__ import annotations

import functools
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ari_agent.speech.worker_supervisor import (
    RestartPolicy,
    WorkerLost,
    WorkerProcess,
    WorkerRefused,
    WorkerStartError,
    WorkerSupervisor,
    WorkerUnavailable,
    describe_exit,
    run_in_interpreter,
    spawn_function,
    worker_program,
)

fake_workers = importlib.import_module("tests.unit.speech.fake_workers")


def supervisor(target: Callable[..., None] | None = None, *args: Any, restart: RestartPolicy = "background",
               **options: Any) -> WorkerSupervisor:
    launch = functools.partial(spawn_function, target or fake_workers.obedient, args, name="test")
    return WorkerSupervisor(launch, name="test", loads="model.bin", restart=restart, **options)


@pytest.fixture
def pool() -> Iterator[WorkerSupervisor]:
    sup = supervisor(start_timeout_s=20)
    sup.start()
    yield sup
    sup.close()


def wait_for(predicate: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_describe_exit() -> None:
    assert describe_exit(None) == "still running"
    assert describe_exit(0) == "exited with status 0"
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert describe_exit(-999) == "killed by signal 999"


def test_a_worker_that_answers(pool: WorkerSupervisor) -> None:
    assert pool.request("do", "echo", "hello", 42, timeout_s=5) == ("hello", 42)
    (worker,) = pool.workers()
    assert worker.alive() and worker.load_ms == 1.5 and worker.info["pid"] == worker.pid
    assert pool.worker_pids() == [worker.pid]
    assert pool.request("do", "echo", "again", timeout_s=5) == ("again",)
    assert pool.worker_pids() == [worker.pid]  # one worker serves request after request


def test_an_error_answer_keeps_the_worker(pool: WorkerSupervisor) -> None:
    pid = pool.worker_pids()
    with pytest.raises(WorkerRefused, match="ValueError: not today"):
        pool.request("do", "fail", timeout_s=5)
    assert pool.worker_pids() == pid and pool.stats.lost == 0
    assert pool.request("do", "echo", 1, timeout_s=5) == (1,)


@pytest.mark.parametrize(("action", "how"), [(("segv",), "killed by SIGSEGV"), (("exit", 7), "exited with status 7")])
def test_a_worker_that_dies_mid_request_is_an_error_within_ms_and_is_replaced(
        pool: WorkerSupervisor, action: tuple[Any, ...], how: str) -> None:
    (first,) = pool.worker_pids()
    t0 = time.monotonic()
    with pytest.raises(WorkerLost, match=rf"test worker {first} crashed \({how}\) during the request"):
        pool.request("do", *action, timeout_s=30)
    assert time.monotonic() - t0 < 1.0  # the sentinel tells at once, not the 30 s limit
    assert gone(first) and pool.stats.crashes == 1 and pool.stats.lost == 1
    assert wait_for(lambda: pool.worker_pids() not in ([], [first]))
    assert pool.request("do", "echo", "back", timeout_s=5) == ("back",)
    assert pool.stats.restarts == 1


def test_a_hung_worker_times_out_is_killed_and_replaced(pool: WorkerSupervisor) -> None:
    (first,) = pool.worker_pids()
    t0 = time.monotonic()
    with pytest.raises(WorkerLost, match=rf"test worker {first} timed out after 0.3 s \(killed\)"):
        pool.request("do", "hang", timeout_s=0.3)
    assert 0.3 <= time.monotonic() - t0 < 2.0
    assert gone(first) and pool.stats.timeouts == 1 and pool.stats.crashes == 0
    assert pool.request("do", "echo", "fresh", timeout_s=20) == ("fresh",)  # waits for the replacement
    assert pool.worker_pids() != [first]


def test_a_worker_killed_while_idle_is_replaced_before_the_next_request(pool: WorkerSupervisor) -> None:
    (first,) = pool.worker_pids()
    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: not pool.workers()[0].alive(), 5)
    assert pool.request("do", "echo", "ok", timeout_s=20) == ("ok",)
    assert pool.worker_pids() != [first]
    assert pool.stats.crashes == 1 and pool.stats.restarts == 1


def test_an_answer_out_of_order_retires_the_worker(pool: WorkerSupervisor) -> None:
    (first,) = pool.worker_pids()
    with pytest.raises(WorkerLost, match="answered out of order"):
        pool.request("do", "swap", timeout_s=5)
    assert gone(first) and pool.stats.lost == 1


def test_the_deadline_covers_the_wait_for_a_free_worker(pool: WorkerSupervisor) -> None:
    busy = threading.Thread(target=pool.request, args=("do", "sleep", 1.0), kwargs={"timeout_s": 5})
    busy.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    with pytest.raises(WorkerUnavailable, match=r"no test worker free within 0.3 s"):
        pool.request("do", "echo", 1, timeout_s=0.3, deadline=time.monotonic() + 0.3)
    assert 0.25 <= time.monotonic() - t0 < 3.0  # the 0.3 s deadline counts, not the 5 s timeout
    busy.join()
    assert pool.request("do", "echo", 2, timeout_s=5) == (2,)  # the busy worker came back


@pytest.mark.parametrize(("target", "reason"), [
    (fake_workers.never_loads, "RuntimeError: no model today"),
    (fake_workers.exits_at_start, "worker exited with status 3"),
    (fake_workers.silent_at_start, r"no answer within 1 s \(killed\)"),
])
def test_a_worker_that_cannot_start(target: Callable[..., None], reason: str) -> None:
    sup = supervisor(target, start_timeout_s=1.0)
    t0 = time.monotonic()
    with pytest.raises(WorkerStartError, match=rf"test worker could not load model.bin: {reason}"):
        sup.start()
    assert time.monotonic() - t0 < 10 and sup.worker_pids() == []


def test_background_restarts_give_up_after_max_restarts(tmp_path: Path) -> None:
    sup = supervisor(fake_workers.starts_once, str(tmp_path / "started"), start_timeout_s=20, max_restarts=1)
    sup.start()
    try:
        with pytest.raises(WorkerLost, match="crashed"):
            sup.request("do", "segv", timeout_s=10)
        assert wait_for(lambda: sup.broken is not None)
        assert "cannot start again" in (sup.broken or "")
        t0 = time.monotonic()
        with pytest.raises(WorkerUnavailable, match=r"test pool is broken: .*cannot start again"):
            sup.request("do", "echo", 1, timeout_s=10)
        assert time.monotonic() - t0 < 1.0  # refused at once, not after the 10 s limit
    finally:
        sup.close()


def test_on_demand_starts_lazily_and_replaces_on_the_next_request() -> None:
    sup = supervisor(restart="on_demand", start_timeout_s=20)
    try:
        assert sup.worker_pids() == []
        assert sup.request("do", "echo", "lazy", timeout_s=20) == ("lazy",)
        (first,) = sup.worker_pids()
        with pytest.raises(WorkerLost, match="crashed"):
            sup.request("do", "segv", timeout_s=10)
        assert sup.worker_pids() == [] and sup.stats.lost == 1 and sup.stats.restarts == 0  # nothing in the background
        assert sup.request("do", "echo", "new", timeout_s=20) == ("new",)
        assert sup.worker_pids() not in ([], [first]) and sup.stats.restarts == 1
    finally:
        sup.close()


def test_on_demand_start_failure_is_the_requests_error() -> None:
    sup = supervisor(fake_workers.never_loads, restart="on_demand", start_timeout_s=20)
    for _ in range(2):  # no broken state: every request tries again
        with pytest.raises(WorkerStartError, match="no model today"):
            sup.request("do", "echo", 1, timeout_s=5)


def test_close_stops_every_worker() -> None:
    sup = supervisor(size=2, start_timeout_s=20)
    sup.start()
    pids = sup.worker_pids()
    assert len(pids) == 2
    t0 = time.monotonic()
    sup.close()
    assert time.monotonic() - t0 < 2.0  # they stopped when asked: no kill after the grace time
    assert all(gone(pid) for pid in pids) and sup.worker_pids() == []
    with pytest.raises(WorkerUnavailable, match="closed"):
        sup.request("do", "echo", 1, timeout_s=1)


def test_on_demand_close_then_use_again() -> None:
    sup = supervisor(restart="on_demand", start_timeout_s=20)
    sup.request("do", "echo", 1, timeout_s=20)
    (first,) = sup.worker_pids()
    sup.close()
    assert gone(first) and sup.worker_pids() == []
    assert sup.request("do", "echo", 2, timeout_s=20) == (2,)
    sup.close()


def test_a_supervisor_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        supervisor(size=0)


# ------------------------------------------------------------------ workers under another interpreter


def _interpreter_worker(fd: int, greeting: str) -> None:
    """Self-contained (its source runs under ``python -I -c``)."""
    import os
    import signal
    import sys
    from multiprocessing.connection import Connection

    conn = Connection(fd)
    conn.send(("ready", {"load_ms": 2.0}))
    while True:
        msg = conn.recv()
        if msg[0] != "greet":
            return
        if msg[2] == "crash":
            print("about to crash", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGSEGV)
        conn.send(("result", msg[1], f"{greeting}, {msg[2]}"))


def interpreter_supervisor(python: str = sys.executable) -> WorkerSupervisor:
    def launch() -> WorkerProcess:
        return run_in_interpreter(python, _interpreter_worker, {"greeting": "hello"}, name="other",
                                  env=dict(os.environ))

    return WorkerSupervisor(launch, name="other", loads="nothing", task="greeting", restart="on_demand",
                            start_timeout_s=20)


def test_worker_program_is_the_function_and_its_call() -> None:
    program = worker_program(_interpreter_worker)
    compile(program, "worker", "exec")
    assert program.startswith("def _interpreter_worker(") and program.endswith(
        "_interpreter_worker(**json.loads(sys.argv[1]))\n")


def test_a_worker_under_another_interpreter_answers_and_its_crash_shows_its_output() -> None:
    sup = interpreter_supervisor()
    try:
        assert sup.request("greet", "world", timeout_s=20) == ("hello, world",)
        (pid,) = sup.worker_pids()
        with pytest.raises(WorkerLost, match=rf"(?s)other worker {pid} crashed \(killed by SIGSEGV\) during greeting"
                                             r".*--- worker output ---\nabout to crash"):
            sup.request("greet", "crash", timeout_s=20)
        assert gone(pid)
        assert sup.request("greet", "again", timeout_s=20) == ("hello, again",)
    finally:
        sup.close()


def test_an_interpreter_that_does_not_exist(tmp_path: Path) -> None:
    sup = interpreter_supervisor(str(tmp_path / "no-python"))
    with pytest.raises(WorkerStartError, match=r"could not start the other worker with .*no-python"):
        sup.request("greet", "x", timeout_s=5)

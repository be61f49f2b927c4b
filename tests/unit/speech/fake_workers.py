"""Stand-in worker processes for the pool's failure handling (spawned: must be importable)."""

from __future__ import annotations

import os
import signal
import time
from multiprocessing.connection import Connection
from typing import Any


def hangs_on_request(conn: Connection, *args: Any) -> None:
    conn.send(("ready", {"pid": os.getpid(), "load_ms": 0.0}))
    if conn.recv()[0] == "transcribe":
        time.sleep(3600)


def crashes_on_request(conn: Connection, *args: Any) -> None:
    conn.send(("ready", {"pid": os.getpid(), "load_ms": 0.0}))
    conn.recv()
    os.kill(os.getpid(), signal.SIGSEGV)


def answers_then_crashes(conn: Connection, *args: Any) -> None:
    """Answers the first request, dies on the second (a worker that fails mid-life)."""
    conn.send(("ready", {"pid": os.getpid(), "load_ms": 0.0}))
    _, req_id, _audio, _params = conn.recv()
    conn.send(("result", req_id, [(0, 100, "hello", 0.9)], 1.0))
    conn.recv()
    os.kill(os.getpid(), signal.SIGSEGV)


def loads_once_then_crashes(conn: Connection, model_path: str, *args: Any) -> None:
    """Starts once (leaving a marker beside the model), crashes on its request; never starts again."""
    marker = model_path + ".started"
    if os.path.exists(marker):
        conn.send(("init_error", "RuntimeError: cannot start again"))
        return
    open(marker, "w").close()
    crashes_on_request(conn)


def echoes_params(conn: Connection, *args: Any) -> None:
    """Answers each request with the decode parameters it was sent (as the segment text)."""
    conn.send(("ready", {"pid": os.getpid(), "load_ms": 0.0}))
    while True:
        msg = conn.recv()
        if msg[0] != "transcribe":
            return
        _, req_id, _audio, params = msg
        text = " ".join(f"{k}={params[k]}" for k in sorted(params) if k != "initial_prompt")
        conn.send(("result", req_id, [(0, 100, text, 0.9)], 1.0))


def never_loads(conn: Connection, *args: Any) -> None:
    conn.send(("init_error", "RuntimeError: no model today"))


# ------------------------------------------------------------------ for the supervisor's own tests


def obedient(conn: Connection, *args: Any) -> None:
    """Ready at once; then does what each request says: ("do", id, action, *arg).

    echo: answers the argument back; fail: an "error" answer; segv: dies by SIGSEGV; exit: os._exit(arg);
    sleep: answers after ``arg`` seconds; hang: never answers; swap: answers with a wrong request id.
    """
    conn.send(("ready", {"pid": os.getpid(), "load_ms": 1.5, "args": list(args)}))
    while True:
        msg = conn.recv()
        if msg[0] != "do":
            return
        _, req_id, action, *arg = msg
        if action == "echo":
            conn.send(("result", req_id, *arg))
        elif action == "fail":
            conn.send(("error", req_id, "ValueError: not today"))
        elif action == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif action == "exit":
            os._exit(arg[0])
        elif action == "sleep":
            time.sleep(arg[0])
            conn.send(("result", req_id, "slept"))
        elif action == "hang":
            time.sleep(3600)
        elif action == "swap":
            conn.send(("result", req_id + 100, "late"))


def exits_at_start(conn: Connection, *args: Any) -> None:
    os._exit(3)


def silent_at_start(conn: Connection, *args: Any) -> None:
    time.sleep(3600)


def starts_once(conn: Connection, marker: str) -> None:
    """Ready the first time (leaving ``marker``), an init error every time after."""
    if os.path.exists(marker):
        conn.send(("init_error", "RuntimeError: cannot start again"))
        return
    open(marker, "w").close()
    obedient(conn)

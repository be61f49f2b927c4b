from __future__ import annotations

import argparse

import pytest

from ari_agent.cli import backend, worker


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ari-agent")
    p.add_argument("-c", "--config")
    sub = p.add_subparsers(dest="command")
    backend.register(sub)
    worker.register(sub)
    return p


def test_commands_register_with_their_handlers() -> None:
    args = parser().parse_args(["backend", "--port", "8701", "--db", "/tmp/x.db", "--delay-ms", "1200"])
    assert args.func is backend.run and (args.port, args.db, args.delay_ms, args.host) == (8701, "/tmp/x.db", 1200,
                                                                                          "127.0.0.1")
    args = parser().parse_args(["worker", "--redis-url", "redis://127.0.0.1:6390/0", "--burst", "--queue", "q"])
    assert args.func is worker.run and args.burst and args.queue == "q" and not args.no_scheduler


def test_bad_options_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert backend.main(["--port", "70000"]) == 2
    assert backend.main(["--fail-status", "200"]) == 2
    assert "--fail-status 200" in capsys.readouterr().err


def test_an_unreachable_redis_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert worker.main(["--redis-url", "redis://:hunter2@127.0.0.1:9/0", "--burst", "--redis-wait", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ari-agent: cannot reach redis at redis://:***@127.0.0.1:9/0")
    assert "hunter2" not in err


def test_a_worker_waits_for_redis_then_gives_up_with_the_same_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert worker.main(["--redis-url", "redis://:hunter2@127.0.0.1:9/0", "--burst", "--redis-wait", "0.3"]) == 2
    err = capsys.readouterr().err
    # the retry warnings go to the log (whatever handler an earlier test left); the verdict is the last line
    assert err.splitlines()[-1].startswith("ari-agent: cannot reach redis at redis://:***@127.0.0.1:9/0")
    assert "hunter2" not in err
    assert worker.main(["--redis-url", "redis://127.0.0.1:9/0", "--redis-wait", "-1"]) == 2
    assert "--redis-wait must be >= 0" in capsys.readouterr().err

"""The durable write spool and the spooling submitter (a fake redis queue; the real one is in
tests/integration/test_fault_redis_outage.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from ari_agent.integrations.http_adapter import PreparedRequest
from ari_agent.integrations.jobs import SubmitState, WriteJob
from ari_agent.integrations.spool import SpoolError, SpoolingWriteQueue, WriteSpool, decode_line, encode_line


def job(n: int) -> WriteJob:
    req = PreparedRequest("record_write", "POST", "http://127.0.0.1:9/writes", json_body={"reference": f"r{n}"},
                          header_templates={"X-Api-Key": "${secret:KEY}"})
    return WriteJob(req, f"record_write-{n:04d}", "RecordWriteResponse")


class FakeQueue:
    def __init__(self) -> None:
        self.up = True
        self.fail_after: int | None = None  # raise once this many submits went through
        self.submitted: list[str] = []

    def submit(self, j: WriteJob) -> SubmitState:
        if not self.up or (self.fail_after is not None and len(self.submitted) >= self.fail_after):
            raise redis.ConnectionError("Connection refused")
        self.submitted.append(j.idempotency_key)
        return SubmitState.QUEUED

    def reachable(self) -> bool:
        return self.up

    def close(self) -> None:
        pass


def test_a_spooled_job_is_one_json_line_with_its_key_and_reads_back(tmp_path: Path) -> None:
    spool = WriteSpool(tmp_path / "spool.jsonl")
    spool.append(job(1))
    spool.append(job(2))
    lines = (tmp_path / "spool.jsonl").read_bytes().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["record_write-0001", "record_write-0002"]
    assert [p.job for p in spool.pending()] == [job(1), job(2)]
    assert b"${secret:KEY}" in lines[0]  # the template, never a resolved secret


def test_a_torn_last_line_is_not_a_job_and_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    spool = WriteSpool(path)
    spool.append(job(1))
    with path.open("ab") as f:
        f.write(encode_line(job(2), 0.0)[:40])  # a crash mid-append: never acknowledged
    assert [p.key for p in spool.pending()] == ["record_write-0001"]
    assert spool.remove({"record_write-0001"}) == 0
    assert not path.exists()
    assert (tmp_path / "spool.jsonl.corrupt").read_bytes().startswith(encode_line(job(2), 0.0)[:40])
    assert decode_line(b'{"v": 99}\n') is None


def test_a_spool_that_cannot_be_written_raises_so_nothing_is_promised(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(SpoolError, match="cannot spool write record_write-0001"):
        WriteSpool(tmp_path / "a-file" / "spool.jsonl").append(job(1))


def test_redis_down_spools_then_replays_in_order_and_switches_back(tmp_path: Path) -> None:
    q = FakeQueue()
    sq = SpoolingWriteQueue(q, WriteSpool(tmp_path / "spool.jsonl"))
    assert sq.submit(job(0)) is SubmitState.QUEUED
    q.up = False
    assert sq.submit(job(1)) is SubmitState.SPOOLED
    q.up = True  # back, but the spool is not empty: new jobs queue behind the spooled ones
    assert sq.submit(job(2)) is SubmitState.SPOOLED
    assert sq.spooling
    report = sq.replay()
    assert report.redis_up and report.replayed == {"queued": 2} and report.left == 0
    assert q.submitted == ["record_write-0000", "record_write-0001", "record_write-0002"]
    assert not sq.spooling
    assert sq.submit(job(3)) is SubmitState.QUEUED


def test_a_replay_while_redis_is_still_down_keeps_everything(tmp_path: Path) -> None:
    q = FakeQueue()
    q.up = False
    sq = SpoolingWriteQueue(q, WriteSpool(tmp_path / "spool.jsonl"))
    for n in range(3):
        sq.submit(job(n))
    report = sq.replay()
    assert not report.redis_up and report.left == 3 and report.total == 0
    assert q.submitted == []


def test_redis_lost_mid_replay_removes_only_what_it_took(tmp_path: Path) -> None:
    q = FakeQueue()
    q.up = False
    sq = SpoolingWriteQueue(q, WriteSpool(tmp_path / "spool.jsonl"))
    for n in range(5):
        sq.submit(job(n))
    q.up, q.fail_after = True, 2
    report = sq.replay()
    assert not report.redis_up and report.replayed == {"queued": 2} and report.left == 3
    assert sq.spooling
    q.fail_after = None
    assert sq.replay().left == 0
    assert q.submitted == [f"record_write-{n:04d}" for n in range(5)]


def test_a_spool_left_by_an_earlier_process_is_replayed_before_new_jobs(tmp_path: Path) -> None:
    WriteSpool(tmp_path / "spool.jsonl").append(job(7))
    q = FakeQueue()
    sq = SpoolingWriteQueue(q, WriteSpool(tmp_path / "spool.jsonl"))
    assert sq.spooling
    assert sq.submit(job(8)) is SubmitState.SPOOLED
    sq.replay()
    assert q.submitted == ["record_write-0007", "record_write-0008"]


async def test_the_runner_answers_spooled_when_redis_refuses_and_queue_unavailable_without_a_spool(
        tmp_path: Path) -> None:
    from ari_agent.devtools.backend_process import free_port
    from ari_agent.integrations.runner import ToolRunner
    from ari_agent.integrations.tools_config import demo_tools_config
    from ari_agent.seam import CallTool

    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: connection refused at once
    call = CallTool("record_write", {"reference": "cb-1"}, "record_write-abc", "t1")
    async with ToolRunner(demo_tools_config(), base_url="http://127.0.0.1:9", redis_url=dead_redis,
                          spool_path=tmp_path / "spool.jsonl", spool_replay_interval_s=60) as runner:
        result = await runner.run(call)
    assert result.ok and result.submitted and result.data["state"] == "spooled"
    assert [p.key for p in WriteSpool(tmp_path / "spool.jsonl").pending()] == ["record_write-abc"]
    async with ToolRunner(demo_tools_config(), base_url="http://127.0.0.1:9", redis_url=dead_redis) as runner:
        result = await runner.run(call)
    assert not result.ok and result.error == "queue_unavailable"

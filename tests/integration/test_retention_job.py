"""The retention RQ job on a real redis-server and a real ``ari-agent worker``: old recordings go, young
ones stay, and the job enqueues its next run."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from ari_agent.ops.retention import retention_job

from .conftest_redis import Workers, redis_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration


def test_retention_job_runs_on_a_worker_and_reschedules(redis_server: str, tmp_path: Path) -> None:  # noqa: F811
    rec = tmp_path / "recordings"
    old, young = rec / "c1" / "received.wav.enc", rec / "c2" / "received.wav"
    for path, age_days in ((old, 40), (young, 2)):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
        t = time.time() - age_days * 86400
        os.utime(path, (t, t))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"agent: {{recordings_dir: {rec}}}\nstorage: {{call_logs_dir: {tmp_path / 'logs'}, "
                   "retention_days: 30}\n")
    conn = redis.Redis.from_url(redis_server)
    queue = Queue("retention-it", connection=conn, serializer=JSONSerializer)
    job = queue.enqueue(retention_job, str(cfg), 3600, "retention-it")
    workers = Workers(redis_server, tmp_path, "retention-it")
    proc = workers.start("--burst")
    assert proc.wait(60) == 0, workers.logs()
    job.refresh()
    assert job.get_status() == "finished", workers.logs()
    assert job.return_value()["deleted"] == 1
    assert not old.exists() and young.exists()
    scheduled = ScheduledJobRegistry("retention-it", connection=conn, serializer=JSONSerializer)
    assert len(scheduled) == 1  # the next run, an hour on
    conn.close()

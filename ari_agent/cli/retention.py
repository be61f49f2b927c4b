"""``ari-agent retention`` and ``ari-agent storage``: what the agent keeps on disk, and for how long.

- ``retention run [--dry-run]``: delete recordings and call logs older than ``storage.retention_days``
  (``--dry-run``: list them, delete nothing); one JSON summary line on stdout.
- ``retention schedule [--every-hours N]``: enqueue the RQ job that runs it now and every N hours
  (``ari-agent worker`` with its scheduler runs it).
- ``storage keygen --id ID``: a new AES-256 key line for ``storage.encryption_key_file``.
- ``storage decrypt FILE.enc --call-id ID [-o OUT]``: open a sealed recording or call log.
- ``storage rekey``: re-seal every blob under the retention roots with the newest key (rotation).
- ``storage show-log CALL_ID [--file F]``: a call's stored event log (redacted when it was written,
  decrypted here), one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ari_agent.errors import AriAgentError


def register(sub: Any) -> None:
    ret = sub.add_parser("retention", help="delete recordings and call logs older than storage.retention_days",
                         description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rsub = ret.add_subparsers(dest="retention_command", metavar="ACTION")
    rsub.required = True
    run = rsub.add_parser("run", help="delete what is older than the configured age")
    run.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    run.add_argument("--list", action="store_true", help="also print each expired file (one per line, stderr)")
    run.set_defaults(func=_run)
    sched = rsub.add_parser("schedule", help="enqueue the retention RQ job, repeating every N hours")
    sched.add_argument("--every-hours", type=float, default=24.0, metavar="N")
    sched.add_argument("--queue", default="ari-agent-writes", help="RQ queue (default: ari-agent-writes)")
    sched.add_argument("--redis-url", help="redis URL (default: redis.url of the service config)")
    sched.set_defaults(func=_schedule)

    st = sub.add_parser("storage", help="keys and sealed files of encryption at rest", description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ssub = st.add_subparsers(dest="storage_command", metavar="ACTION")
    ssub.required = True
    keygen = ssub.add_parser("keygen", help="print a new key line (append it to the key file)")
    keygen.add_argument("--id", required=True, help="key id, e.g. 2026-12")
    keygen.set_defaults(func=_keygen)
    dec = ssub.add_parser("decrypt", help="write the plain content of a sealed file")
    dec.add_argument("file", type=Path)
    dec.add_argument("--call-id", help="the call the file belongs to (default: its directory's name)")
    dec.add_argument("-o", "--output", type=Path, help="output file (default: stdout)")
    dec.set_defaults(func=_decrypt)
    show = ssub.add_parser("show-log", help="print a call's stored event log (decrypting it)")
    show.add_argument("call_id", metavar="CALL_ID", help="the call id (its directory under storage.call_logs_dir)")
    show.add_argument("--file", type=Path, help="a stored log file elsewhere (default: found by the call id)")
    show.set_defaults(func=_show_log)
    rekey = ssub.add_parser("rekey", help="re-seal every sealed file under the retention roots with the newest key")
    rekey.set_defaults(func=_rekey)


def _config(args: argparse.Namespace) -> Any:
    from ari_agent.config import load_config

    return load_config(getattr(args, "config", None))


def _run(args: argparse.Namespace) -> int:
    from ari_agent.ops.retention import run_from_config

    report = run_from_config(_config(args), dry_run=args.dry_run)
    if report is None:
        print(json.dumps({"skipped": "storage.retention_days is not set"}))
        return 0
    if args.list or args.dry_run:
        for f in report.expired:
            print(f"{'would delete' if args.dry_run else 'deleted'} {f.path}", file=sys.stderr)
    print(json.dumps(report.summary()))
    return 1 if report.errors else 0


def _schedule(args: argparse.Namespace) -> int:
    import redis
    from rq import Queue
    from rq.serializers import JSONSerializer

    from ari_agent.ops.retention import retention_job

    if args.every_hours <= 0:
        raise AriAgentError("--every-hours must be > 0")
    url = args.redis_url or _config(args).redis.url
    try:
        conn = redis.Redis.from_url(url, socket_connect_timeout=3)
        queue = Queue(args.queue, connection=conn, serializer=JSONSerializer)
        job = queue.enqueue(retention_job, getattr(args, "config", None), int(args.every_hours * 3600), args.queue,
                            description="ari-agent retention")
    except redis.RedisError as exc:
        raise AriAgentError(f"cannot reach redis: {type(exc).__name__}") from None
    print(f"retention job {job.id} enqueued on {args.queue}, then every {args.every_hours:g} h")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from ari_agent.governance.at_rest import generate_key_line

    print(generate_key_line(args.id))
    return 0


def _sealer(args: argparse.Namespace) -> Any:
    from ari_agent.governance.at_rest import load_sealer

    cfg = _config(args)
    # the keys are needed to open old files even when new ones are no longer sealed
    cfg = cfg.model_copy(update={"storage": cfg.storage.model_copy(update={"encrypt_at_rest": True})})
    return load_sealer(cfg)


def _decrypt(args: argparse.Namespace) -> int:
    from ari_agent.governance.at_rest import recording_aad

    sealer = _sealer(args)
    try:
        blob = args.file.read_bytes()
    except OSError as exc:
        raise AriAgentError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    data = sealer.open(blob, recording_aad(args.call_id or args.file.resolve().parent.name))
    if args.output is None:
        sys.stdout.buffer.write(data)
    else:
        args.output.write_bytes(data)
    return 0


def _show_log(args: argparse.Namespace) -> int:
    from ari_agent.governance.call_logs import find_call_log, read_call_log, storage_sealer

    cfg = _config(args)
    path = args.file if args.file is not None else find_call_log(cfg, args.call_id)
    for entry in read_call_log(path, storage_sealer(cfg), args.call_id):
        print(json.dumps(entry, ensure_ascii=False))
    return 0


def _rekey(args: argparse.Namespace) -> int:
    from ari_agent.governance.at_rest import SEALED_SUFFIX, recording_aad, write_atomic
    from ari_agent.ops.retention import retention_roots, stored_files

    sealer = _sealer(args)
    done = same = 0
    for root in retention_roots(_config(args)):
        for f in stored_files(root):
            if not f.path.name.endswith(SEALED_SUFFIX):
                continue
            new = sealer.rekey(f.path.read_bytes(), recording_aad(f.path.parent.name))
            if new is None:
                same += 1
                continue
            write_atomic(f.path, new)
            done += 1
    print(json.dumps({"rekeyed": done, "already_current": same, "key": sealer.keyring.current}))
    return 0

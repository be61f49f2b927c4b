"""``ari-agent pbx up|down|status``: the local development PBX (Asterisk 22 in a Debian sid rootfs)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ari_agent.cli.common import config_from
from ari_agent.ops.localpbx import LocalPbx


def register(sub: Any) -> None:
    p = sub.add_parser("pbx", help="local Asterisk 22 for development and CI: up | down | status")
    p.add_argument("action", choices=["up", "down", "status"])
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    pbx = LocalPbx(root=cfg.pbx.root, ari_url=cfg.ari.url, ari_user=cfg.ari.username,
                   ari_password=cfg.ari.password.get_secret_value())
    if args.action == "up":
        if not pbx.is_built():
            print(f"building the PBX rootfs in {pbx.root} (debootstrap Debian sid + asterisk; ~1 min, once)",
                  file=sys.stderr)
        t0 = time.monotonic()
        st = pbx.up()
        print(f"pbx: {st.describe()} ({time.monotonic() - t0:.1f}s)")
        return 0
    if args.action == "down":
        print("pbx: stopped" if pbx.down() else "pbx: was not running")
        return 0
    st = pbx.status()
    print(f"pbx: {st.describe()}")
    return 0 if st.running and st.ari_ok else 3

"""``ari-agent run``: serve calls (ARI app + externalMedia audio loop) until stopped."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from typing import Any

from ari_agent.call.app import build_call_manager
from ari_agent.cli.common import config_from
from ari_agent.config import Config
from ari_agent.ops.metrics_server import start_metrics_server

log = logging.getLogger("ari_agent.run")


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="serve calls: connect to ARI and answer calls sent to Stasis(app)")
    p.set_defaults(func=handle)


async def serve(cfg: Config) -> None:
    manager = await build_call_manager(cfg)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    metrics = await start_metrics_server(cfg.metrics.bind) if cfg.metrics.bind else None
    runner = asyncio.create_task(manager.run(), name="ari-events")
    log.info("ari-agent serving app %r on %s", cfg.ari.app, cfg.ari.url)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping: ending %d active call(s)", len(manager.sessions))
    runner.cancel()
    stopper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner
    await manager.close()
    await manager.ari.close()
    if metrics is not None:
        await metrics.cleanup()


def handle(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    asyncio.run(serve(cfg))
    return 0

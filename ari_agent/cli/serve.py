"""``ari-agent run``: serve calls (ARI app + externalMedia audio loop) until stopped.

SIGTERM/SIGINT drain (docs/runbook.md): new callers go straight to the fallback queue (reason
``draining``), ``/readyz`` turns false, calls in progress may finish within
``lifecycle.drain_deadline_s`` and are handed to the queue then (reason ``drain_deadline``); the
process exits 0. A second signal ends the wait at once. systemd's ``TimeoutStopSec`` and Kubernetes'
``terminationGracePeriodSeconds`` are set above that deadline (deploy/).

With ``agi.enabled`` the FastAGI front-door routing (``call/agi_routing.py``, dialplan/agi-entry.conf)
is served by the same process on ``agi.bind``, once the agent is ready for calls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from typing import Any

from ari_agent.call.agi_routing import AgiRoutingService
from ari_agent.call.app import ari_client, build_call_manager
from ari_agent.call.sweep import sweep_orphans
from ari_agent.cli.common import config_from
from ari_agent.config import Config
from ari_agent.errors import AriAgentError
from ari_agent.ops.engines import resolve_engines
from ari_agent.ops.health import ServeState, start_ops_server
from ari_agent.records.acd import AcdFollower
from ari_agent.records.store import CallRecordStore
from ari_agent.telephony.ari import AriError, AriUnreachable

log = logging.getLogger("ari_agent.run")


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="serve calls: connect to ARI and answer calls sent to Stasis(app)")
    p.set_defaults(func=handle)


async def serve(cfg: Config) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    state = ServeState()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            stop.set()
        elif state.source is not None:
            manager.hurry()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal)
    ops = None
    if cfg.metrics.bind:
        ops, port = await start_ops_server(cfg.metrics.bind, state)
        log.info("health and metrics on %s (port %d): /healthz /readyz /metrics", cfg.metrics.bind, port)
    # Callers a dead predecessor left in Stasis go to the queue now, not after the models have loaded.
    await sweep_before_start(cfg)
    cfg = (await asyncio.to_thread(resolve_engines, cfg)).config  # stt/tts "auto": decided once, logged
    manager = await build_call_manager(cfg)
    state.source = manager
    runner = asyncio.create_task(manager.run(), name="ari-events")
    log.info("ari-agent serving app %r on %s", cfg.ari.app, cfg.ari.url)
    agi = await start_agi(cfg)
    acd = await start_acd_follower(cfg)
    stopper = asyncio.create_task(stop.wait())
    if not stop.is_set():
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    rc = 0
    if runner.done():
        rc = 1
        with contextlib.suppress(asyncio.CancelledError):
            exc = runner.exception()
            log.error("ARI event loop ended: %s", exc or "no error")
    else:
        # Events keep flowing while draining: hang-ups and handoffs of the calls in progress arrive.
        handed = await manager.drain(cfg.lifecycle.drain_deadline_s)
        log.info("drained: %d call(s) handed off at the deadline", handed)
    runner.cancel()
    stopper.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await runner
    if agi is not None:
        await agi.close()
    if acd is not None:
        await acd.close()
        acd.store.close()
    await manager.close()
    await manager.ari.close()
    if ops is not None:
        await ops.cleanup()
    return rc


async def start_agi(cfg: Config) -> AgiRoutingService | None:
    """The FastAGI routing service when ``agi.enabled`` (None otherwise)."""
    if not cfg.agi.enabled:
        return None
    agi = AgiRoutingService(cfg)
    port = await agi.start()
    log.info("FastAGI routing on %s (port %d): pilot %g%%", cfg.agi.bind, port, cfg.agi.pilot_percent)
    return agi


async def start_acd_follower(cfg: Config) -> AcdFollower | None:
    """Queue answers into the call records (``records.follow_acd``); a records database or AMI that is
    not there is logged, never fatal: calls are served without it."""
    if not (cfg.records.enabled and cfg.records.follow_acd):
        return None
    try:
        store = await asyncio.to_thread(CallRecordStore, cfg.records.url)
    except AriAgentError as exc:
        log.warning("queue answers not recorded: %s", exc)
        return None
    follower = AcdFollower(store, cfg.ami)
    if not await follower.start(connect_timeout_s=2.0):
        log.warning("queue answers: AMI %s:%d not reached yet; retrying in the background", cfg.ami.host, cfg.ami.port)
    return follower


async def sweep_before_start(cfg: Config) -> None:
    """The orphan cleanup once, before loading anything heavy. No events WebSocket of this app is
    connected yet, so no new call can be in its Stasis: whatever is there was left by a dead process."""
    ari = ari_client(cfg)
    try:
        await asyncio.wait_for(sweep_orphans(ari, cfg, grace_s=0), 2 * cfg.ari.request_timeout_s)
    except (AriError, AriUnreachable, TimeoutError) as exc:
        log.warning("orphan cleanup before start skipped (%s); it runs again once connected", exc)
    finally:
        await ari.close()


def handle(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    return asyncio.run(serve(cfg))

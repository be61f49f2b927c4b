"""Health checks of the agent's environment, each with a plain-language verdict.

The media check is a real loopback round trip through Asterisk: two externalMedia channels in one
mixing bridge, RTP sent into one must come out of the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ari_agent.config import Config
from ari_agent.media.pcm import Codec
from ari_agent.media.rtp import RtpPacket
from ari_agent.ops.engines import ResolvedEngines, resolve_engines
from ari_agent.ops.models import PIPER_JOE, WHISPER_TINY_EN, ModelSpec, model_status, prepared_whisper_model
from ari_agent.telephony.ari import AriAuthError, AriClient, AriError, AriNotFound, AriUnreachable
from ari_agent.telephony.event_stream import AriEventStream
from ari_agent.telephony.events import StasisStart

REQUIRED_MODULES = ("res_ari.so", "res_stasis.so", "chan_rtp.so", "res_ari_channels.so", "res_ari_bridges.so",
                    "app_stasis.so", "bridge_simple.so", "bridge_softmix.so")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


class _Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []
        self.transport: asyncio.DatagramTransport | None = None

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        with contextlib.suppress(Exception):
            self.packets.append(RtpPacket.parse(data))


async def run_checks(cfg: Config) -> list[Check]:
    engines = await asyncio.to_thread(resolve_engines, cfg, announce=False)
    checks: list[Check] = [check_engines(engines), await asyncio.to_thread(check_models, engines.config)]
    checks.extend(await asyncio.to_thread(check_write_queue, cfg))
    ari = AriClient.from_config(cfg.ari)
    async with ari:
        try:
            info = await ari.asterisk_info()
            version = info.get("system", {}).get("version", "?")
            checks.append(Check("ari", True, f"ARI answers at {cfg.ari.url} (Asterisk {version})"))
        except AriAuthError:
            checks.append(Check("ari", False, f"ARI at {cfg.ari.url} refused user {cfg.ari.username!r}: check "
                                              "ari.conf and the agent's ari.password"))
            return checks
        except (AriUnreachable, AriError) as exc:
            checks.append(Check("ari", False, f"ARI not reachable at {cfg.ari.url}: {exc}. Is Asterisk running "
                                              "(ari-agent pbx up) and http.conf enabled?"))
            return checks
        missing = []
        for mod in REQUIRED_MODULES:
            try:
                m = await ari.module(mod)
                if str(m.get("status", "")).lower() != "running":
                    missing.append(f"{mod} ({m.get('status')})")
            except AriNotFound:
                missing.append(f"{mod} (not loaded)")
        checks.append(Check("modules", not missing, "required modules loaded" if not missing
                            else "missing: " + ", ".join(missing) + " — load them in modules.conf"))
        apps = [a.get("name") for a in await ari.applications()]
        checks.append(Check("agent", cfg.ari.app in apps,
                            f"ARI app {cfg.ari.app!r} is registered (the agent is connected)"
                            if cfg.ari.app in apps else
                            f"ARI app {cfg.ari.app!r} is not registered: `ari-agent run` is not connected; "
                            "calls fall back to the support queue"))
        checks.append(await _media_round_trip(cfg, ari))
    return checks


def check_write_queue(cfg: Config) -> list[Check]:
    """Redis (``redis.url``) answers, and an ``ari-agent worker`` serves the intent map's write queue.

    ``worker`` passes when the map has no ``async_write`` tool (nothing to serve). Without a worker the
    agent still accepts slow writes (queued, or spooled when redis is down): they wait, none is lost."""
    import redis
    from rq import Queue, Worker
    from rq.serializers import JSONSerializer

    from ari_agent.conversation.intent_map import DEMO_MAP_PATH, load_intent_map
    from ari_agent.errors import ConfigError
    from ari_agent.integrations.jobs import url_without_password

    map_path = cfg.conversation.intent_map or DEMO_MAP_PATH
    try:
        tools = load_intent_map(map_path).tools_config
    except ConfigError as exc:
        return [Check("worker", False, f"cannot read the intent map's write queue: {exc}")]
    slow = [n for n, spec in tools.definitions.items() if spec.async_write]
    name = tools.write_queue.name
    url = url_without_password(cfg.redis.url)
    conn = redis.Redis.from_url(cfg.redis.url, socket_timeout=2, socket_connect_timeout=2)
    try:
        try:
            version = conn.info("server").get("redis_version", "?")
        except redis.RedisError as exc:
            spool = f"the spool {cfg.redis.spool_path}" if cfg.redis.spool_path else "nowhere (no redis.spool_path)"
            return [Check("redis", False, f"redis not reachable at {url}: {exc}. Slow writes go to {spool} "
                                          "until it answers; start redis-server"),
                    Check("worker", not slow, "no redis, so no worker" if slow else "no async_write tools")]
        checks = [Check("redis", True, f"redis {version} answers at {url}")]
        if not slow:
            return [*checks, Check("worker", True, "the intent map has no async_write tools: no worker needed")]
        workers = [w for w in Worker.all(connection=conn) if name in w.queue_names()]
        waiting = Queue(name, connection=conn, serializer=JSONSerializer).count
        if workers:
            names = ", ".join(sorted(f"{w.name} ({w.get_state()})" for w in workers))
            checks.append(Check("worker", True, f"{len(workers)} worker(s) on queue {name!r}: {names}; "
                                                f"{waiting} job(s) waiting ({', '.join(slow)})"))
        else:
            checks.append(Check("worker", False, f"no `ari-agent worker` on queue {name!r}: {waiting} slow write(s) "
                                                 f"waiting ({', '.join(slow)}) are kept, not sent"))
        return checks
    finally:
        conn.close()


def check_engines(engines: ResolvedEngines) -> Check:
    """The speech engines a service started now would run (``auto`` decided here as ``ari-agent run`` does),
    and why; an ``auto`` that falls back to the embedded engines is fine (the low-CPU mode), and says why."""
    return Check("engines", True, "; ".join(c.describe() for c in (engines.stt, engines.tts)))


def check_models(cfg: Config) -> Check:
    """The model files the configured engines load: prepared, and matching their manifest's sha256.

    A missing or corrupt model is one plain line here, before an engine loads it (whisper.cpp segfaults
    on a corrupt file rather than raising). Models the config does not use are listed, never fatal."""
    used: list[ModelSpec] = []
    if cfg.tts.engine == "piper" and cfg.tts.piper.model_path is None:
        used.append(PIPER_JOE)
    whisper_path = cfg.stt.whisper.model_path
    if cfg.stt.engine in ("whisper", "both") and (
            whisper_path is None or Path(whisper_path) == prepared_whisper_model(cfg.models.dir)):
        used.append(WHISPER_TINY_EN)
    problems: list[str] = []
    fine: list[str] = []
    unused: list[str] = []
    for spec in (WHISPER_TINY_EN, PIPER_JOE):
        in_use = spec in used
        st = model_status(spec, cfg.models.dir, verify=in_use)
        if in_use:
            (fine if st.ok else problems).append(f"{spec.name} ok" if st.ok else f"{spec.name}: {st.detail}")
        else:
            unused.append(f"{spec.name} {'prepared' if st.ok else 'not prepared' if not st.prepared else 'BROKEN'}")
    if problems:
        return Check("models", False, "; ".join(problems))
    used_txt = ", ".join(fine) + " (sha256 verified)" if fine else "no prepared model is used by this config"
    return Check("models", True, f"{used_txt}; not used: {', '.join(unused) or 'none'} ({cfg.models.dir})")


async def _media_round_trip(cfg: Config, ari: AriClient) -> Check:
    app = f"{cfg.ari.app}-doctor"
    probe = AriClient.from_config(cfg.ari, app)
    stream = AriEventStream(cfg.ari.url, app, ari.auth_header, tls=ari.tls)
    started: dict[str, asyncio.Event] = {}
    tag = uuid.uuid4().hex[:8]
    ids = [f"doctor-{tag}-a", f"doctor-{tag}-b"]
    for i in ids:
        started[i] = asyncio.Event()

    async def pump() -> None:
        async for ev in stream.events():
            if isinstance(ev, StasisStart) and ev.channel.id in started:
                started[ev.channel.id].set()

    loop = asyncio.get_running_loop()
    sinks: list[_Sink] = []
    pump_task = asyncio.create_task(pump())
    bridge_id = f"doctor-{tag}-bridge"
    created: list[str] = []
    try:
        await asyncio.wait_for(stream.connected.wait(), 5)
        remotes = []
        for cid in ids:
            transport, sink = await loop.create_datagram_endpoint(_Sink, local_addr=(cfg.media.bind_host, 0))
            sink.transport = transport
            sinks.append(sink)
            port = sink.transport.get_extra_info("sockname")[1]
            info = await probe.external_media(f"{cfg.media.bind_host}:{port}", "ulaw", channel_id=cid)
            created.append(cid)
            remotes.append((info.local_address, info.local_port))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started.values())), 5)
        await probe.create_bridge("mixing", bridge_id=bridge_id)
        for cid in ids:
            await probe.add_channel(bridge_id, cid)
        tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(160) / 8000)).astype(np.int16)
        payload = Codec.ULAW.encode(tone)
        t0 = time.monotonic()
        for n in range(25):
            pkt = RtpPacket(payload_type=0, sequence_number=n, timestamp=n * 160, ssrc=0xD0C702, payload=payload,
                            marker=n == 0)
            assert sinks[0].transport is not None
            sinks[0].transport.sendto(pkt.serialize(), remotes[0])
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        got = len(sinks[1].packets)
        ms = (time.monotonic() - t0) * 1000
        if got >= 20:
            return Check("media", True, f"externalMedia RTP loopback: {got}/25 packets came back through Asterisk "
                                        f"({ms:.0f} ms)")
        return Check("media", False, f"externalMedia RTP loopback: only {got}/25 packets came back: check rtp.conf "
                                     "ports, firewall, and media.bind_host")
    except (TimeoutError, AriError, AriUnreachable, OSError) as exc:
        return Check("media", False, f"externalMedia loopback failed: {exc.__class__.__name__}: {exc}")
    finally:
        for cid in created:
            await probe.quietly(probe.hangup(cid))
        await probe.quietly(probe.destroy_bridge(bridge_id))
        for s in sinks:
            if s.transport is not None:
                s.transport.close()
        stream.close()
        pump_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump_task
        await probe.close()

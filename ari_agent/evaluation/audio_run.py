"""One audio-mode run: the agent serves real calls through the local Asterisk; each is judged from its
call record and the caller-side recordings (``audio_runner.py``); the same scenarios are also run in
text mode, so the report shows the two side by side (the gap is what speech costs).

The agent runs in this process (``devtools/harness.py``: the ``CallManager`` of ``ari-agent run``) with the
service config plus: the voice conversation, the suite's intent map, tools on a demo backend started for
the run (one for the whole run: ``backend_faults`` are set and cleared per scenario), and call records
in the run's records database with a salt of the run's own. Speech engines are the config's
(``stt.engine`` / ``tts.engine``; the default ``auto``, as in the quick start, is resolved as ``ari-agent run``
resolves it: both and piper where their models are prepared and their runtimes import, else pocketsphinx
and espeak-ng).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ari_agent.config import Config, load_config
from ari_agent.conversation.intent_map import DEMO_MAP_PATH, IntentMap, load_intent_map
from ari_agent.devtools.demo_backend import running_demo_backend
from ari_agent.devtools.harness import InProcessAgent
from ari_agent.errors import AriAgentError
from ari_agent.evaluation.audio_plan import DEFAULT_VOICES, NotPlayable, plan_scenario, voice_for
from ari_agent.evaluation.audio_runner import AudioEvidence, AudioModeRunner, check_redis
from ari_agent.evaluation.judge import Verdict, judge
from ari_agent.evaluation.metrics import compute
from ari_agent.evaluation.run import ClassifierFactory, RunResult, SuiteResult, check_against_map, suite_result
from ari_agent.evaluation.scenario import Suite, load_suite
from ari_agent.evaluation.speech_figures import speech_figures
from ari_agent.evaluation.text_runner import TextModeRunner
from ari_agent.ops.engines import resolve_engines
from ari_agent.records.model import CallerHasher, version_hash
from ari_agent.records.store import CallRecordStore

OnScenario = Callable[[Suite, Verdict, AudioEvidence | None], None]


def agent_config(config_path: str | None, env: Mapping[str, str], *, records_url: str, salt: str,
                 map_path: Path, backend_url: str, work_dir: Path) -> Config:
    """The service config with what an audio run needs on top (environment-style overrides)."""
    overrides = {
        "ARI_AGENT__CONVERSATION__MODE": "voice",
        "ARI_AGENT__CONVERSATION__INTENT_MAP": str(map_path),
        "ARI_AGENT__CONVERSATION__TOOLS_BASE_URL": backend_url,
        # as in text mode: the map's hours never close, whatever the time of day of the run
        "ARI_AGENT__CONVERSATION__BUSINESS_HOURS": "false",
        "ARI_AGENT__RECORDS__ENABLED": "true",
        "ARI_AGENT__RECORDS__URL": records_url,
        "ARI_AGENT__RECORDS__SALT": salt,
        "ARI_AGENT__AGENT__RECORDINGS_DIR": str(work_dir / "agent-recordings"),
    }
    return load_config(config_path, env={**env, **overrides})


async def evaluate_audio(
    suite_paths: Sequence[str | Path],
    classifier_for: ClassifierFactory,
    *,
    records_url: str,
    work_dir: Path,
    config_path: str | None = None,
    env: Mapping[str, str] | None = None,
    voices: tuple[str, ...] = DEFAULT_VOICES,
    baseline: dict[str, dict[str, float | None]] | None = None,
    on_scenario: OnScenario | None = None,
) -> RunResult:
    import os

    suites = [load_suite(p) for p in suite_paths]
    map_paths = {(s.map_path() or DEMO_MAP_PATH).resolve() for s in suites}
    if len(map_paths) != 1:
        raise AriAgentError("audio mode runs one agent: every suite must use the same intent map")
    map_path = map_paths.pop()
    intent_map = load_intent_map(map_path)
    for s in suites:
        check_against_map(s, intent_map)
    version = version_hash(map_path.read_bytes())
    salt = secrets.token_hex(16)
    hasher = CallerHasher(salt)
    result = RunResult("audio", dt.datetime.now(dt.UTC), [], "default")
    store = await asyncio.to_thread(CallRecordStore, records_url)
    try:
        async with running_demo_backend() as backend_url:
            cfg = agent_config(config_path, os.environ if env is None else env, records_url=records_url,
                               salt=salt, map_path=map_path, backend_url=backend_url, work_dir=work_dir)
            engines = await asyncio.to_thread(resolve_engines, cfg)
            cfg = engines.config
            result.classifier = "default; " + ", ".join(
                f"{c.setting.split('.')[0]} {c.engine}{' (auto)' if c.auto else ''}"
                for c in (engines.stt, engines.tts))
            await check_redis(cfg.redis.url)  # up front: without it every transfer lacks its context
            async with InProcessAgent(cfg) as agent:
                assert agent.caller is not None and agent.ari is not None and agent.manager is not None
                await agent.manager.settled()  # the map's lines rendered ahead: not in the first call's timings
                runner = AudioModeRunner(agent.caller, agent.ari, store, hasher, work_dir=work_dir,
                                         redis_url=cfg.redis.url, backend_url=backend_url,
                                         live_events=lambda channel: _live_events(agent, channel),
                                         intent_map=intent_map)
                for suite in suites:
                    result.suites.append(await _run_suite(suite, runner, intent_map, map_path, version, store,
                                                          voices, baseline, on_scenario))
                await _wait_idle(agent)
    finally:
        await asyncio.to_thread(store.close)
    classifier = classifier_for(intent_map)
    for sr in result.suites:  # the same scenarios in text mode, beside the audio figures
        played = {v.scenario.id for v in sr.verdicts}
        today = sr.suite.spec.today or dt.date.today()
        text = TextModeRunner(intent_map, classifier, today=today)
        verdicts = [judge(sc, await text.run(sc), intent_map) for sc in sr.suite.spec.scenarios if sc.id in played]
        sr.text_metrics = compute(verdicts)
    return result


async def _run_suite(suite: Suite, runner: AudioModeRunner, intent_map: IntentMap, map_path: Path, version: str,
                     store: CallRecordStore, voices: tuple[str, ...],
                     baseline: dict[str, dict[str, float | None]] | None,
                     on_scenario: OnScenario | None) -> SuiteResult:
    verdicts: list[Verdict] = []
    played: list[tuple[Verdict, AudioEvidence]] = []
    not_played: dict[str, str] = {}
    for i, sc in enumerate(suite.spec.scenarios):
        voice = voice_for(i, voices)
        try:
            plan_scenario(sc, voice)
        except NotPlayable as exc:
            not_played[sc.id] = str(exc)
            continue
        trace, ev = await runner.run(sc, voice)
        v = judge(sc, trace, intent_map, recorded_policy_events=ev.record.policy_events if ev.record else [])
        if ev.record is not None and ev.record.outcome == "transferred" and (t := v.check("transfer")) is not None:
            await asyncio.to_thread(store.label_transfer, ev.record.call_id, t.ok)  # the KPI's labelled share
        verdicts.append(v)
        played.append((v, ev))
        if on_scenario is not None:
            on_scenario(suite, v, ev)
    if not verdicts:
        raise AriAgentError(f"{suite.path}: no scenario can be played by voice ("
                            + "; ".join(f"{k}: {r}" for k, r in not_played.items()) + ")")
    sr = suite_result(suite, map_path, version, verdicts, baseline)
    sr.speech = speech_figures(played, not_played)
    return sr


async def _wait_idle(agent: InProcessAgent) -> None:
    if agent.manager is not None:
        await agent.manager.wait_idle(20)



def _live_events(agent: InProcessAgent, channel: str) -> list[dict[str, Any]] | None:
    """The event log so far of the voice conversation serving the caller's channel ``channel`` (what the
    caller has heard the agent say; the runner answers read-backs from it), None while there is none."""
    from ari_agent.call.voice_loop import VoiceConversation

    if agent.manager is None:
        return None
    for session in list(agent.manager.sessions.values()):
        if session.caller.id == channel and isinstance(session.conversation, VoiceConversation):
            return session.conversation.events
    return None

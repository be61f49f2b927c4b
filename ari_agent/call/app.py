"""Builds the agent's call manager from config: prompts rendered and cached, conversation chosen."""

from __future__ import annotations

import asyncio

from ari_agent.call.greeting import GreetAndListen
from ari_agent.call.handoff import close_handoff_desks
from ari_agent.call.manager import CallManager
from ari_agent.call.services import VoiceLoopSettings, VoiceServices
from ari_agent.call.voice_loop import VoiceConversation
from ari_agent.config import Config
from ari_agent.errors import AriAgentError
from ari_agent.speech.engine_choice import unresolved
from ari_agent.speech.tts import PromptCache
from ari_agent.speech.tts_factory import create_tts
from ari_agent.telephony.ari import AriClient


def ari_client(cfg: Config) -> AriClient:
    return AriClient.from_config(cfg.ari)


def require_resolved_engines(cfg: Config) -> None:
    """The call layer builds engines from concrete settings only: ``auto`` is decided by the command that
    starts the service (``ari_agent.ops.engines.resolve_engines``), once, with its log line."""
    if names := unresolved(cfg.stt.engine, cfg.tts.engine):
        raise AriAgentError(f"{' and '.join(names)} 'auto' is not resolved: pass the config through "
                            "ari_agent.ops.engines.resolve_engines() first")


def prompt_cache(cfg: Config) -> PromptCache:
    """The configured voice (``tts.engine``) behind the prompt cache (blocking: Piper loads its model)."""
    return PromptCache(create_tts(cfg.tts, cfg.models.dir), cfg.tts.cache_dir)


async def build_voice_services(cfg: Config) -> VoiceServices:
    """Load the intent map, build the classifier, open the tool runner, render fixed prompts."""
    require_resolved_engines(cfg)
    from ari_agent.call.throttling import throttle_from_config
    from ari_agent.conversation.intent_map import DEMO_MAP_PATH, parse_intent_map
    from ari_agent.conversation.nlu import build_classifier
    from ari_agent.governance.runtime import open_governance
    from ari_agent.integrations.runner import ToolRunner

    map_path = cfg.conversation.intent_map or DEMO_MAP_PATH
    # Approval checked (refused in production mode) on the very bytes then parsed; config load audited.
    governance = await asyncio.to_thread(open_governance, cfg, map_path)
    intent_map = await asyncio.to_thread(parse_intent_map, governance.map.text(), str(map_path))
    classifier = await asyncio.to_thread(build_classifier, intent_map.nlu_intents())
    tools = ToolRunner(intent_map.tools_config, base_url=cfg.conversation.tools_base_url, redis_url=cfg.redis.url,
                       spool_path=cfg.redis.spool_path)
    settings = VoiceLoopSettings(ack_text=cfg.conversation.ack_text, tool_timeout_s=cfg.conversation.tool_timeout_s,
                                 stt=cfg.stt, business_hours=cfg.conversation.business_hours)
    whisper_pool = None
    if cfg.stt.engine in ("whisper", "both"):
        from ari_agent.speech.whisper_stt import create_whisper_pool

        # Validates the model file and starts the worker processes (a bad model is refused here).
        whisper_pool = await asyncio.to_thread(create_whisper_pool, cfg.stt, cfg.models.dir)
    prompts = await asyncio.to_thread(prompt_cache, cfg)
    services = VoiceServices(intent_map, classifier, tools, prompts, settings, whisper_pool, governance=governance,
                             throttle=throttle_from_config(cfg))
    await services.warm()
    await governance.start()  # the kill-switch watch
    return services


async def build_call_manager(cfg: Config, *, record_lateness: bool = False) -> CallManager:
    from ari_agent.governance.at_rest import load_sealer

    require_resolved_engines(cfg)
    load_sealer(cfg)  # storage.encrypt_at_rest on without a usable key: refused here, in one line
    if cfg.conversation.mode == "voice":
        services = await build_voice_services(cfg)
        manager = CallManager(cfg, ari_client(cfg), lambda: VoiceConversation(services),
                              record_lateness=record_lateness)
        manager.on_close.append(services.aclose)
        manager.on_settle.append(services.warmed)
        manager.on_close.append(close_handoff_desks)  # AMI connection and Redis pool of the handoffs
        return manager
    prompts = await asyncio.to_thread(prompt_cache, cfg)
    await prompts.warm([cfg.agent.greeting])
    greeting = prompts.get(cfg.agent.greeting)
    manager = CallManager(
        cfg, ari_client(cfg), lambda: GreetAndListen(greeting, cfg.agent.listen_after_greeting_s),
        record_lateness=record_lateness,
    )
    manager.on_close.append(close_handoff_desks)
    return manager

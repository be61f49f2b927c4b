"""Builds the agent's call manager from config: prompts rendered and cached, conversation chosen."""

from __future__ import annotations

import asyncio

from ari_agent.call.greeting import GreetAndListen
from ari_agent.call.manager import CallManager
from ari_agent.call.services import VoiceLoopSettings, VoiceServices
from ari_agent.call.voice_loop import VoiceConversation
from ari_agent.config import Config
from ari_agent.speech.tts import PromptCache
from ari_agent.speech.tts_factory import create_tts
from ari_agent.telephony.ari import AriClient


def ari_client(cfg: Config) -> AriClient:
    return AriClient(cfg.ari.url, cfg.ari.username, cfg.ari.password.get_secret_value(), cfg.ari.app,
                     timeout_s=cfg.ari.request_timeout_s)


def prompt_cache(cfg: Config) -> PromptCache:
    """The configured voice (``tts.engine``) behind the prompt cache (blocking: Piper loads its model)."""
    return PromptCache(create_tts(cfg.tts, cfg.models.dir), cfg.tts.cache_dir)


async def build_voice_services(cfg: Config) -> VoiceServices:
    """Load the intent map, build the classifier, open the tool runner, render fixed prompts."""
    from ari_agent.conversation.intent_map import DEMO_MAP_PATH, load_intent_map
    from ari_agent.conversation.nlu import build_classifier
    from ari_agent.integrations.runner import ToolRunner

    intent_map = await asyncio.to_thread(load_intent_map, cfg.conversation.intent_map or DEMO_MAP_PATH)
    classifier = await asyncio.to_thread(build_classifier, intent_map.nlu_intents())
    tools = ToolRunner(intent_map.tools_config, base_url=cfg.conversation.tools_base_url, redis_url=cfg.redis.url)
    settings = VoiceLoopSettings(ack_text=cfg.conversation.ack_text, tool_timeout_s=cfg.conversation.tool_timeout_s,
                                 stt=cfg.stt)
    whisper_pool = None
    if cfg.stt.engine == "whisper":
        from ari_agent.speech.whisper_stt import create_whisper_pool

        # Validates the model file and starts the worker processes (a bad model is refused here).
        whisper_pool = await asyncio.to_thread(create_whisper_pool, cfg.stt)
    prompts = await asyncio.to_thread(prompt_cache, cfg)
    services = VoiceServices(intent_map, classifier, tools, prompts, settings, whisper_pool)
    await services.warm()
    return services


async def build_call_manager(cfg: Config, *, record_lateness: bool = False) -> CallManager:
    if cfg.conversation.mode == "voice":
        services = await build_voice_services(cfg)
        manager = CallManager(cfg, ari_client(cfg), lambda: VoiceConversation(services),
                              record_lateness=record_lateness)
        manager.on_close.append(services.aclose)
        return manager
    prompts = await asyncio.to_thread(prompt_cache, cfg)
    await prompts.warm([cfg.agent.greeting])
    greeting = prompts.get(cfg.agent.greeting)
    return CallManager(
        cfg, ari_client(cfg), lambda: GreetAndListen(greeting, cfg.agent.listen_after_greeting_s),
        record_lateness=record_lateness,
    )

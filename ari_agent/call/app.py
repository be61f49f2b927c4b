"""Builds the agent's call manager from config: prompts rendered and cached, conversation chosen."""

from __future__ import annotations

from ari_agent.call.greeting import GreetAndListen
from ari_agent.call.manager import CallManager
from ari_agent.config import Config
from ari_agent.speech.tts import EspeakNg, PromptCache
from ari_agent.telephony.ari import AriClient


def ari_client(cfg: Config) -> AriClient:
    return AriClient(cfg.ari.url, cfg.ari.username, cfg.ari.password.get_secret_value(), cfg.ari.app,
                     timeout_s=cfg.ari.request_timeout_s)


def prompt_cache(cfg: Config) -> PromptCache:
    return PromptCache(EspeakNg(cfg.tts.voice, cfg.tts.rate_wpm), cfg.tts.cache_dir)


async def build_call_manager(cfg: Config, *, record_lateness: bool = False) -> CallManager:
    prompts = prompt_cache(cfg)
    await prompts.warm([cfg.agent.greeting])
    greeting = prompts.get(cfg.agent.greeting)
    return CallManager(
        cfg, ari_client(cfg), lambda: GreetAndListen(greeting, cfg.agent.listen_after_greeting_s),
        record_lateness=record_lateness,
    )

"""The factory that picks a speech recogniser for a call from the configuration.

The protocol and its results (:class:`~ari_agent.speech.recognizer.SpeechRecognizer`,
:class:`~ari_agent.speech.recognizer.Transcript`, :class:`~ari_agent.speech.recognizer.SttError`) live
in :mod:`ari_agent.speech.recognizer`, below the engines; this module sits above them and imports an
engine only when it is asked for (pocketsphinx or whisper, whichever is configured).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# The settings models live in ari_agent.config (the bottom layer); re-exported here for callers.
from ari_agent.config import PocketsphinxSettings, SttConfig, WhisperSettings
from ari_agent.speech.recognizer import SpeechRecognizer, SttError

if TYPE_CHECKING:
    from ari_agent.speech.whisper_stt import WhisperWorkerPool

__all__ = ["PocketsphinxSettings", "SttConfig", "WhisperSettings", "create_recognizer"]


def create_recognizer(
    config: SttConfig | None = None, *, whisper_pool: WhisperWorkerPool | None = None
) -> SpeechRecognizer:
    """A recogniser for one call.

    pocketsphinx: a fresh decoder per call (its running normalisation adapts to the caller's line).
    whisper: a light per-call front end over the process-wide ``whisper_pool`` (built once with
    :func:`ari_agent.speech.whisper_stt.create_whisper_pool`); required for that engine.
    """
    config = config or SttConfig(engine="pocketsphinx")
    if config.engine == "auto":
        raise SttError("stt.engine 'auto' is resolved when the service starts (ari_agent.ops.engines), "
                       "not per call")
    if config.engine == "pocketsphinx":
        from ari_agent.speech.pocketsphinx_stt import PocketsphinxRecognizer

        return PocketsphinxRecognizer(config.pocketsphinx)
    if config.engine == "whisper":
        from ari_agent.speech.whisper_stt import WhisperRecognizer

        if whisper_pool is None:
            raise SttError("the whisper engine needs a WhisperWorkerPool (create_whisper_pool(config))")
        return WhisperRecognizer(whisper_pool, prompt_with_expectation=config.whisper.prompt_with_expectation)
    raise SttError(f"unknown speech engine {config.engine!r}")  # pragma: no cover - Literal guards it

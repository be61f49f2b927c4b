"""Embedded recogniser: pocketsphinx 5, one decoder per call, decoding while the caller speaks.

Each turn activates a search built from the engine's Expectation (see :mod:`grammar_lm`): a closed
JSGF grammar for constrained turns, a domain trigram LM for the open turn, the bundled generic LM
for free text. Searches are added to the call's decoder once (named by content hash) and switched
with ``activate_search``; built grammars and LMs are shared process-wide by content hash. A call's
decoder starts from a one-word dictionary and learns each search's words (with all their
pronunciations) as the search is added: a new call is ready in ~25 ms instead of ~800 ms. The generic
LM (free text) needs the whole dictionary: its first use in a call costs ~3.5 s (measured).

Audio path. Line audio is 8 kHz; the bundled acoustic model is 16 kHz wideband. Upsampling by
repeating each sample ("fold", the default) mirrors 0-4 kHz into 4-8 kHz; a band-limiting
resampler (soxr) leaves 4-8 kHz empty, where the model expects the fricatives. Measured through the
endpointer on 5 synthetic voices over G.711 (tests/unit/speech/bench.py): 4-digit strings fully
right 70 % with "fold" against 56 % with soxr "LQ", open-turn WER 21 % against 26 %, yes/no 98 %
against 90 %: the mismatch of an empty upper band costs more than the aliasing. "fold" also adds no
delay (soxr LQ streaming holds back ~33 ms).

Incremental: ``feed`` runs the search on every chunk, so ``finish`` only flushes, ends the utterance
and, with ``posterior``, computes the lattice posterior. Confidence is the mean over the recognised
words of their lattice posterior probability (pocketsphinx's forward-backward over the word lattice;
``seg().prob``), in [0, 1]. Without ``posterior`` pocketsphinx reports no usable posterior and the
confidence is the fixed :data:`NO_POSTERIOR_CONFIDENCE`. Number and code grammars (digits, numbers,
letters: :data:`LATTICE_OPTIONAL`) get posteriors only with ``grammar_posterior``: on a 4-8 digit grammar the
lattice cost 570 ms median after the caller had finished, and without it the phone set's digits were read
right 46.2 -> 50.0 %. Yes/no keeps it: its lattice pass is what keeps "I'm not sure" from being a "sure"
(2 of 62 non-yes answers heard as yes without it, 0 with). pocketsphinx reads ``bestpath`` when a search
is made, so each search is made with its own setting.

Not thread-safe: one recogniser per call; ``finish`` may run in a worker thread but never
concurrently with ``feed``.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from pocketsphinx import Decoder

from ari_agent.config import PocketsphinxSettings
from ari_agent.media.pcm import Resampler, as_pcm16
from ari_agent.seam import Expectation
from ari_agent.speech.grammar_lm import SearchCache, SearchSpec, default_dictionary_path
from ari_agent.speech.recognizer import SttError, Transcript, Word

log = logging.getLogger(__name__)

NO_POSTERIOR_CONFIDENCE: Final = 0.5
LATTICE_OPTIONAL: Final = frozenset({"digits", "number", "letters"})  # lattice posteriors with grammar_posterior only
_FRAME_MS: Final = 10  # pocketsphinx feature frame rate: 100 frames per second
_FILLERS: Final = ("<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]")

_caches: dict[Path | None, SearchCache] = {}
_caches_lock = threading.Lock()


def shared_search_cache(directory: Path | None = None) -> SearchCache:
    """The process-wide search cache (one dictionary load, one build per distinct expectation)."""
    with _caches_lock:
        cache = _caches.get(directory)
        if cache is None:
            cache = SearchCache(directory=directory)
            _caches[directory] = cache
        return cache


_BOOTSTRAP_WORDS: Final = {"a": "AH"}


def _model_dir() -> Path:
    import pocketsphinx

    return Path(pocketsphinx.get_model_path()) / "en-us"


def _bootstrap_dictionary() -> Path:
    """A one-word dictionary to start each call's decoder with. The searches then add exactly the
    words they use: with the full 135k-word dictionary, adding a search costs ~750 ms per decoder
    (measured), with a small one ~2 ms."""
    path = Path(tempfile.gettempdir()) / f"ari-agent-bootstrap-{os.getuid()}.dict"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(f"{w} {p}\n" for w, p in _BOOTSTRAP_WORDS.items())
        os.replace(tmp, path)
    return path


def generic_lm_path() -> Path:
    return _model_dir() / "en-us.lm.bin"


class _Upsampler:
    def __init__(self, method: str) -> None:
        self._resampler: Resampler | None = None
        if method != "fold":
            self._resampler = Resampler(8000, 16000, quality=method)  # type: ignore[arg-type]

    def process(self, pcm8k: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        if self._resampler is None:
            out: npt.NDArray[np.int16] = np.repeat(pcm8k, 2)
            return out
        return self._resampler.process(pcm8k)

    def flush(self) -> npt.NDArray[np.int16]:
        if self._resampler is None:
            return np.zeros(0, dtype=np.int16)
        return self._resampler.flush()


class PocketsphinxRecognizer:
    """A :class:`~ari_agent.speech.recognizer.SpeechRecognizer` for one call."""

    engine = "pocketsphinx"

    def __init__(self, settings: PocketsphinxSettings | None = None, *, cache: SearchCache | None = None) -> None:
        self.settings = settings or PocketsphinxSettings()
        self._cache = cache or shared_search_cache(self.settings.cache_dir)
        s = self.settings
        options: dict[str, Any] = {
            "samprate": 16000,
            "lm": None,
            "loglevel": "ERROR",
            "bestpath": s.posterior,
            "beam": s.beam,
            "wbeam": s.wbeam,
            "pbeam": s.pbeam,
        }
        if s.cmninit:
            options["cmninit"] = s.cmninit
        options["dict"] = str(_bootstrap_dictionary())
        try:
            self._decoder = Decoder(**options)
        except Exception as exc:  # pocketsphinx raises RuntimeError/ValueError on a bad model/config
            raise SttError(f"pocketsphinx could not start: {exc}") from exc
        self._searches: set[str] = set()
        self._posterior_searches: set[str] = set()  # made with lattice posteriors (bestpath)
        self._words: set[str] = set(_BOOTSTRAP_WORDS)
        self._full_dictionary = False
        self._spec: SearchSpec | None = None
        self._active: str | None = None
        self._upsampler = _Upsampler(s.upsample)
        self._in_utt = False
        self._samples = 0
        self._closed = False

    # -- searches --------------------------------------------------------------------------------

    @property
    def search(self) -> SearchSpec | None:
        """The search of the current (or last) turn."""
        return self._spec

    def _add_words(self, lexicon: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
        # Once the full dictionary is loaded every CMUdict word is in the decoder already, and pocketsphinx
        # refuses to add a word twice ("Failed to add word account": a digits turn after a free-text turn).
        in_decoder = self._cache.dictionary.in_cmudict if self._full_dictionary else (lambda _w: False)
        new = [(w, prons) for w, prons in lexicon if w not in self._words and not in_decoder(w)]
        for i, (word, prons) in enumerate(new):
            for k, phones in enumerate(prons):
                last = i == len(new) - 1 and k == len(prons) - 1
                try:
                    self._decoder.add_word(word if k == 0 else f"{word}({k + 1})", phones, last)
                except RuntimeError as exc:
                    raise SttError(f"pocketsphinx refused the word {word!r} ({phones}): {exc}") from exc
            self._words.add(word)

    def _ensure_search(self, spec: SearchSpec, kind: str) -> None:
        if spec.name in self._searches:
            return
        if spec.kind == "generic" and not self._full_dictionary:
            # The generic LM's vocabulary is the whole dictionary: load it (slow, free-text turns only).
            self._decoder.load_dict(str(default_dictionary_path()), str(_model_dir() / "en-us" / "noisedict"), None)
            extra = [(w, p) for w, p in self._cache.dictionary.lexicon(self._words)
                     if not self._cache.dictionary.in_cmudict(w)]
            self._words = {w for w in self._words if self._cache.dictionary.in_cmudict(w)}
            self._full_dictionary = True
            self._add_words(tuple(extra))
        self._add_words(spec.words)
        s = self.settings
        posterior = s.posterior and (spec.kind != "jsgf" or kind not in LATTICE_OPTIONAL or s.grammar_posterior)
        config = self._decoder.config
        try:
            config["bestpath"] = posterior  # read by the search made next, not by the decoder later
            if spec.kind == "jsgf":
                self._decoder.add_jsgf_string(spec.name, spec.text)
            elif spec.kind == "lm":
                self._decoder.add_lm_file(spec.name, str(self._cache.lm_path(spec)))
            else:
                self._decoder.add_lm_file(spec.name, str(generic_lm_path()))
        except (ValueError, RuntimeError) as exc:
            raise SttError(f"pocketsphinx refused the {spec.kind} search {spec.name}: {exc}") from exc
        finally:
            config["bestpath"] = s.posterior
        self._searches.add(spec.name)
        if posterior:
            self._posterior_searches.add(spec.name)

    # -- the protocol ----------------------------------------------------------------------------

    def start(self, expect: Expectation) -> None:
        if self._closed:
            raise SttError("recogniser is closed")
        if self._in_utt:  # a turn abandoned without finish(): drop it
            self._decoder.end_utt()
            self._in_utt = False
        spec = self._cache.spec_for(expect)
        self._ensure_search(spec, expect.kind)
        if self._active != spec.name:  # (current_search() segfaults before any search is active)
            self._decoder.activate_search(spec.name)
            self._active = spec.name
        self._spec = spec
        self._upsampler = _Upsampler(self.settings.upsample)
        self._samples = 0
        self._decoder.start_utt()
        self._in_utt = True

    def feed(self, pcm8k: npt.ArrayLike) -> None:
        if not self._in_utt:
            return
        samples = as_pcm16(pcm8k, "recogniser input")
        self._samples += samples.size
        wide = self._upsampler.process(samples)
        if wide.size:
            self._decoder.process_raw(wide.tobytes(), False, False)

    def partial(self) -> str:
        if not self._in_utt:
            return ""
        hyp = self._decoder.hyp()
        return hyp.hypstr if hyp is not None else ""

    def finish(self) -> Transcript:
        t0 = time.perf_counter()
        audio_ms = self._samples // 8
        if not self._in_utt:
            return Transcript(text="", engine=self.engine, audio_ms=audio_ms, error="no turn in progress")
        tail = self._upsampler.flush()
        if tail.size:
            self._decoder.process_raw(tail.tobytes(), False, False)
        self._decoder.end_utt()
        self._in_utt = False
        hyp = self._decoder.hyp()
        text = hyp.hypstr.strip() if hyp is not None else ""
        posterior = self._spec is not None and self._spec.name in self._posterior_searches
        words: list[Word] = []
        if text:
            for seg in self._decoder.seg():
                # (a grammar search without a lattice also lists its null transitions, "(NULL)")
                if seg.word in _FILLERS or seg.word.startswith(("[", "<", "+", "(")):
                    continue
                word = seg.word.split("(", 1)[0]
                conf = float(seg.prob) if posterior else NO_POSTERIOR_CONFIDENCE
                words.append(Word(word, seg.start_frame * _FRAME_MS, (seg.end_frame + 1) * _FRAME_MS,
                                  min(1.0, max(0.0, conf))))
        if not text:
            confidence = 0.0
        elif posterior and words:
            confidence = sum(w.confidence for w in words) / len(words)
        else:
            confidence = NO_POSTERIOR_CONFIDENCE
        latency_ms = (time.perf_counter() - t0) * 1000.0
        return Transcript(text=text, confidence=confidence, words=tuple(words), latency_ms=latency_ms,
                          audio_ms=audio_ms, engine=self.engine)

    def close(self) -> None:
        """End the call: the decoder (its own copy of the acoustic model, ~10 MB native) is released now,
        not whenever the last reference to this recogniser goes."""
        if self._closed:
            return
        if self._in_utt:
            self._decoder.end_utt()
            self._in_utt = False
        self._closed = True
        del self._decoder

    def recognise(self, expect: Expectation, pcm8k: npt.ArrayLike, chunk: int = 160) -> Transcript:
        """One whole utterance, fed in ``chunk``-sample pieces as the line would deliver it."""
        samples = as_pcm16(pcm8k, "recogniser input")
        self.start(expect)
        for i in range(0, samples.size, chunk):
            self.feed(samples[i : i + chunk])
        return self.finish()

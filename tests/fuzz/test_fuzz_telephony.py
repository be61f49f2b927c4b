"""Fuzzing the ARI event parser: what arrives on the events WebSocket is decoded with
``parse_event(json.loads(text))``; anything malformed must raise ``AriEventError`` (the stream
counts it and skips it), never another exception."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ari_agent.telephony.events import AriEvent, AriEventError, OtherEvent, channel_of, parse_event

from .fuzzing import FUZZ

TYPES = ["StasisStart", "StasisEnd", "ChannelDestroyed", "ChannelHangupRequest", "ChannelStateChange",
         "ChannelDtmfReceived", "PlaybackFinished", "ChannelVarset", ""]

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
json_values: st.SearchStrategy[Any] = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=3)),
    max_leaves=8)


@st.composite
def event_like(draw: st.DrawFn) -> dict[str, Any]:
    """An object shaped like an ARI event, with each field present, missing or of the wrong type."""
    event: dict[str, Any] = {"type": draw(st.one_of(st.sampled_from(TYPES), json_values))}
    maybe = st.one_of(json_values, st.just(None))
    channel = draw(st.one_of(json_values, st.fixed_dictionaries(
        {"id": st.one_of(st.text(max_size=10), json_values)},
        optional={"name": maybe, "state": maybe, "caller": st.one_of(json_values, st.fixed_dictionaries(
            {}, optional={"number": maybe, "name": maybe})), "dialplan": maybe, "channelvars": maybe})))
    for key, value in (("channel", channel), ("args", draw(maybe)), ("digit", draw(st.one_of(st.text(max_size=2),
                       maybe))), ("duration_ms", draw(maybe)), ("cause", draw(maybe)), ("cause_txt", draw(maybe)),
                       ("playback", draw(st.one_of(maybe, st.fixed_dictionaries({"id": maybe})))),
                       ("application", draw(maybe))):
        if draw(st.booleans()):
            event[key] = value
    return event


def _parse(data: Any) -> AriEvent | None:
    try:
        event = parse_event(data)
    except AriEventError:
        return None
    assert isinstance(event, AriEvent)
    channel_of(event)
    return event


@FUZZ
@given(st.one_of(event_like(), json_values))
def test_event_parser_raises_only_ari_event_error(fuzz_cases: Callable[[], None], data: Any) -> None:
    fuzz_cases()
    event = _parse(data)
    if event is not None and not isinstance(event, OtherEvent):
        assert event.type in TYPES


@FUZZ
@given(st.one_of(st.text(max_size=200), event_like().map(json.dumps), json_values.map(json.dumps)))
def test_event_text_raises_only_value_or_ari_event_error(fuzz_cases: Callable[[], None], text: str) -> None:
    """The WebSocket path: json.loads refuses with ValueError, parse_event with AriEventError."""
    fuzz_cases()
    try:
        data = json.loads(text)
    except ValueError:
        return
    _parse(data)

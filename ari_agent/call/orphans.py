"""What a (re)connected agent must clean up in Asterisk: pure, from ARI's own listings.

After ``kill -9`` (or any crash) the callers it was serving stay inside ``Stasis()`` in dead air, and
its externalMedia channels and mixing bridges stay up for ever: Asterisk does not know that nobody
will come back for them. On every connect of the events WebSocket the agent lists channels, bridges
and its application, and this module decides what to do with each thing, so the decision can be
tested without a PBX:

- a caller in Stasis of *our* application that no live session serves → fallback queue;
- one of *our* leftover media channels (externalMedia ``UnicastRTP/...``, id ``<call>-media``) → hang up;
- a bridge of ours that no live session owns → destroy (it is empty once the above are done).

"Ours" is decided by the application name only (the channel's ``Stasis(app,...)`` dialplan data or
the application's own subscriptions), never by an id pattern alone: several agents, one per ARI app
name, may share one Asterisk, and each must touch only its own channels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MEDIA_SUFFIX = "-media"
MEDIA_TECH_PREFIX = "UnicastRTP/"


@dataclass(frozen=True)
class CleanupPlan:
    handoff: list[str] = field(default_factory=list)  # caller channel ids → fallback queue
    hangup: list[str] = field(default_factory=list)  # media channel ids → hang up
    destroy: list[str] = field(default_factory=list)  # bridge ids → destroy

    def is_empty(self) -> bool:
        return not (self.handoff or self.hangup or self.destroy)


def stasis_app_of(channel: Mapping[str, Any]) -> str | None:
    """The application a channel is in Stasis of, from its dialplan snapshot; None when not in Stasis."""
    dialplan = channel.get("dialplan")
    if not isinstance(dialplan, Mapping) or dialplan.get("app_name") != "Stasis":
        return None
    data = str(dialplan.get("app_data") or "")
    return data.split(",", 1)[0].strip() or None


def is_media_channel(channel: Mapping[str, Any]) -> bool:
    return str(channel.get("id", "")).endswith(MEDIA_SUFFIX) or str(channel.get("name", "")).startswith(
        MEDIA_TECH_PREFIX)


def plan_cleanup(
    app: str,
    channels: Sequence[Mapping[str, Any]],
    bridges: Sequence[Mapping[str, Any]],
    application: Mapping[str, Any],
    served_channels: Iterable[str],
    live_bridges: Iterable[str],
) -> CleanupPlan:
    """Decide the cleanup from ``GET /channels``, ``GET /bridges`` and ``GET /applications/{app}``.

    ``served_channels``: channel ids that a live session of this process owns (callers and media);
    ``live_bridges``: bridge ids that live sessions own."""
    served = set(served_channels)
    live = set(live_bridges)
    subscribed = {str(c) for c in application.get("channel_ids") or ()}
    app_bridges = {str(b) for b in application.get("bridge_ids") or ()}
    handoff: list[str] = []
    hangup: list[str] = []
    ours: set[str] = set()
    for ch in channels:
        cid = str(ch.get("id", ""))
        if not cid or cid in served:
            continue
        if stasis_app_of(ch) != app and cid not in subscribed:
            continue
        ours.add(cid)
        (hangup if is_media_channel(ch) else handoff).append(cid)
    destroy: list[str] = []
    for br in bridges:
        bid = str(br.get("id", ""))
        if not bid or bid in live:
            continue
        members = {str(c) for c in br.get("channels") or ()}
        # Ours: subscribed by our app and holding none of another app's channels, or holding only
        # channels we are cleaning up (a bridge is never shared between two agents' calls).
        if (bid in app_bridges and members <= ours) or (members and members <= ours):
            destroy.append(bid)
    return CleanupPlan(sorted(handoff), sorted(hangup), sorted(destroy))

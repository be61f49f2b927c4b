"""The throttle of ``ari-agent run``: the conversation's rules (``conversation/throttle.py``) over the
Redis store (``governance/throttle_store.py``), with in-process counting as the fail-closed fallback
and every trip a policy event. Built here because the call layer is the one that sees both."""

from __future__ import annotations

from ari_agent.config import Config
from ari_agent.conversation.throttle import MemoryStore, Throttle, ThrottleRules
from ari_agent.governance.throttle_store import RedisThrottleStore, record_policy_event


def redis_throttle(redis_url: str, rules: ThrottleRules | None = None) -> Throttle:
    return Throttle(RedisThrottleStore(redis_url, MemoryStore()), rules, on_trip=record_policy_event)


def throttle_from_config(cfg: Config) -> Throttle | None:
    """The ``throttle`` section's rules over ``redis.url``; None when ``throttle.enabled`` is false."""
    t = cfg.throttle
    if not t.enabled:
        return None
    return redis_throttle(cfg.redis.url, ThrottleRules(**t.model_dump(exclude={"enabled"})))

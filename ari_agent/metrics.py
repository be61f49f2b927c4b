"""Prometheus metrics shared by all layers (a registry of its own, so tests can read it directly).

Served by ``ari-agent run`` on ``metrics.bind`` (127.0.0.1:9464 by default: scrape it locally or
through your own authenticating proxy; it carries no secrets and no caller data)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

CALLS = Counter("ari_agent_calls", "Calls ended, by who ended them", ["ended_by"], registry=REGISTRY)
ACTIVE_CALLS = Gauge("ari_agent_active_calls", "Calls in progress", registry=REGISTRY)
TURN_STAGE = Histogram(
    "ari_agent_turn_stage_seconds",
    "Per-turn stage times after the endpointer declared the end of the caller's turn",
    ["stage"],
    buckets=(0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0),
    registry=REGISTRY,
)
BARGE_INS = Counter("ari_agent_barge_ins", "Prompts the caller talked over", registry=REGISTRY)
ACKNOWLEDGEMENTS = Counter("ari_agent_acknowledgements", "Acknowledgements played for slow tools", registry=REGISTRY)
TOOL_CALLS = Counter("ari_agent_tool_calls", "Tool calls by tool and result", ["tool", "result"], registry=REGISTRY)
HANDOFFS = Counter("ari_agent_handoffs", "Calls handed to a human queue", ["queue"], registry=REGISTRY)
RTP_PACKETS = Counter("ari_agent_rtp_packets", "RTP packets by direction and fate", ["direction", "result"],
                      registry=REGISTRY)
ARI_RECONNECTS = Counter("ari_agent_ari_connects", "ARI events WebSocket (re)connections", registry=REGISTRY)
ORPHANS_CLEANED = Counter("ari_agent_orphans_cleaned", "Leftovers of a previous agent process cleaned up after an "
                          "ARI connect (caller = handed to the queue)", ["kind"], registry=REGISTRY)
DRAINING = Gauge("ari_agent_draining", "1 while the agent drains: no new calls, calls in progress finish",
                 registry=REGISTRY)
CALLS_PASSED_ON = Counter("ari_agent_calls_passed_on", "New callers this agent did not serve (passed on to the next "
                          "agent or the fallback queue), by why: draining, capacity", ["reason"], registry=REGISTRY)
POLICY_EVENTS = Counter("ari_agent_policy_events", "Policy events (a throttle tripped: brute force, enumeration, "
                        "call flood), by kind and rule", ["kind", "rule"], registry=REGISTRY)

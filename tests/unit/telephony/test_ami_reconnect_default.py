"""AMI's reconnect backoff is capped at 1 s by default: the first handoff queue check after an Asterisk
restart waits for the login (``call/handoff.py`` waits ``ami.action_timeout_s`` for it), so a 5 s cap
would make that check time out and the handoff go ahead blind."""

from __future__ import annotations

from ari_agent.config import AmiConfig, load_config


def test_the_ami_reconnect_is_back_within_a_second_by_default() -> None:
    cfg = AmiConfig()
    assert cfg.reconnect_initial_s <= cfg.reconnect_max_s <= 1.0
    assert cfg.reconnect_max_s < cfg.action_timeout_s  # a queue check outlasts one reconnect delay
    assert load_config(None, env={}).ami.reconnect_max_s == 1.0

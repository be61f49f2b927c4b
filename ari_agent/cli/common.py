"""Helpers shared by the CLI commands: config loading and logging set-up."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from ari_agent.config import Config, load_config
from ari_agent.log import setup_logging

if TYPE_CHECKING:
    from ari_agent.telephony.ari import AriClient

__all__ = ["ari_client", "config_from"]


def ari_client(cfg: Config) -> AriClient:
    """The configured ARI client (the call layer is imported only by the commands that use it: every
    ``ari-agent`` command imports this module, and a kill-switch flip should not wait for the call layer)."""
    from ari_agent.call.app import ari_client as build

    return build(cfg)


def config_from(args: argparse.Namespace) -> Config:
    cfg = load_config(getattr(args, "config", None) or os.environ.get("ARI_AGENT_CONFIG") or None)
    setup_logging(cfg.log.level, cfg.log.json_format)
    return cfg

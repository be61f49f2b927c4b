"""Helpers shared by the CLI commands: config loading and logging set-up."""

from __future__ import annotations

import argparse
import os

from ari_agent.call.app import ari_client
from ari_agent.config import Config, load_config
from ari_agent.log import setup_logging

__all__ = ["ari_client", "config_from"]


def config_from(args: argparse.Namespace) -> Config:
    cfg = load_config(getattr(args, "config", None) or os.environ.get("ARI_AGENT_CONFIG") or None)
    setup_logging(cfg.log.level, cfg.log.json_format)
    return cfg

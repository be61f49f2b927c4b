"""Helpers shared by the CLI commands: config loading and logging set-up."""

from __future__ import annotations

import argparse

from ari_agent.config import Config, load_config
from ari_agent.log import setup_logging
from ari_agent.telephony.ari import AriClient


def config_from(args: argparse.Namespace) -> Config:
    cfg = load_config(getattr(args, "config", None))
    setup_logging(cfg.log.level, cfg.log.json_format)
    return cfg


def ari_client(cfg: Config) -> AriClient:
    return AriClient(cfg.ari.url, cfg.ari.username, cfg.ari.password.get_secret_value(), cfg.ari.app,
                     timeout_s=cfg.ari.request_timeout_s)

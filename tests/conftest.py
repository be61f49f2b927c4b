"""Shared test set-up."""

from __future__ import annotations

import os

# Never let a test touch the real service state directory.
os.environ.setdefault("ARI_AGENT_STATE_DIR", "/tmp/ari-agent-test-state")

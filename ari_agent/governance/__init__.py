"""Governance: the kill switch, throttles, the tamper-evident audit log and approved changes."""

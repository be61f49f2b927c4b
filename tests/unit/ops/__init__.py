"""Unit tests of ari_agent.ops."""

"""Unit tests of ari_agent.media."""

"""Unit tests of ari_agent.devtools."""

"""Unit tests of ari_agent.telephony."""

"""ari-agent: an AI voice agent for customer service on an on-prem Asterisk PBX."""

__version__ = "0.1.0"

"""Call records: one per call (outcome, intents, transfer, latencies, tool calls), and the KPIs built on them."""

"""The conversation layer: intent map, NLU, slot parsing, dialogue state machine, policy. Pure.

- ``seam``: the events the engine takes and the actions it returns (the one seam of DESIGN.md);
- ``intent_map``: the business-owned YAML, validated at load (``load_intent_map``);
- ``engine``: ``ConversationEngine(map, classifier, call_id=...).handle(event) -> list[Action]``;
- ``slots``: spoken digits, numbers, dates, times, yes/no, letters, choices, free text;
- ``policy`` / ``escalation``: what the agent may do, and where a handoff goes;
- elsewhere: JSGF for a ``Listen`` (``ari_agent.speech.grammar_lm``), CPU per turn (``devtools.bench_engine``).

Nothing is imported here, so that ``ari_agent.seam`` stays cheap to import.
"""

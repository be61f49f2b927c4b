"""Evaluation harness: scenarios with expected outcomes, run as text or as real calls, scored and gated."""

"""Developer tooling that ships with ari-agent but is not one of the product's layers.

The demo CRM backend, the tiny ggml Whisper model generator, the scripted test caller, the in-process
harness and the benchmarks. Product code never imports from here (an import-linter contract keeps it
so); the CLI, the tests and the benchmarks do.
"""

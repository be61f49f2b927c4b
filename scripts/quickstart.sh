#!/usr/bin/env bash
# The main job on a fresh Debian/Ubuntu machine (as root): install everything, start the local PBX
# (Asterisk 22), the agent, and place one demo call. The agent is left serving calls.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
STATE=${ARI_AGENT_STATE_DIR:-/var/lib/ari-agent}
mkdir -p "$STATE"

ari-agent pbx up

if [ -f "$STATE/agent.pid" ] && kill -0 "$(cat "$STATE/agent.pid")" 2>/dev/null; then
  echo "agent: already running (pid $(cat "$STATE/agent.pid"))"
else
  nohup ari-agent run >>"$STATE/agent.log" 2>&1 &
  echo $! >"$STATE/agent.pid"
  echo "agent: started (pid $!), log $STATE/agent.log"
fi
ari-agent doctor

# A demo caller: a synthetic voice asks about an order; the agent greets it and records what it says.
flite -voice rms -t "Hi there. I would like to check the status of my order, please." -o "$STATE/demo-caller.wav"
ari-agent call --wav "$STATE/demo-caller.wav"
cat <<EOT

The agent is serving calls (pid $(cat "$STATE/agent.pid"), log $STATE/agent.log).
Place another test call:   .venv/bin/ari-agent call --wav YOUR.wav
Stop everything:           kill \$(cat $STATE/agent.pid); .venv/bin/ari-agent pbx down
EOT

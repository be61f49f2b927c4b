#!/usr/bin/env bash
# The main job on a fresh Debian/Ubuntu machine (as root, or a user with sudo): install everything,
# start the local PBX (Asterisk 22), the agent, and place one demo call. The agent is left serving calls.
set -euo pipefail
# Needs root (Debian packages, the PBX rootfs): a normal user is re-run through sudo, root runs as is.
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "ari-agent quickstart: run as root (sudo is not installed)" >&2
    exit 2
  fi
  exec sudo --preserve-env=ARI_AGENT_STATE_DIR,ARI_AGENT_CONFIG,ARI_AGENT_EXTRAS,ARI_AGENT_DEBIAN_MIRROR,ARI_AGENT_PBX_ROOT,PYTHON bash "$0" "$@"
fi
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
STATE=${ARI_AGENT_STATE_DIR:-/var/lib/ari-agent}
mkdir -p "$STATE"

ari-agent pbx up

# start_bg NAME CMD...: start a background service once, remembering its pid.
start_bg() {
  local name=$1; shift
  if [ -f "$STATE/$name.pid" ] && kill -0 "$(cat "$STATE/$name.pid")" 2>/dev/null; then
    echo "$name: already running (pid $(cat "$STATE/$name.pid"))"
  else
    nohup "$@" >>"$STATE/$name.log" 2>&1 &
    echo $! >"$STATE/$name.pid"
    echo "$name: started (pid $!), log $STATE/$name.log"
  fi
}
# The demo CRM the demo intent map's tools call (orders, appointments, identity, FAQ).
start_bg backend ari-agent backend --port 8700 --db "$STATE/demo-backend.sqlite3"
start_bg agent ari-agent run
for _ in $(seq 1 100); do
  ari-agent doctor --require-agent >/dev/null 2>&1 && break
  sleep 0.3
done
ari-agent doctor --require-agent

# A demo call: a synthetic caller (flite voice) asks where its order is, gives the number, says goodbye.
# Recorded on the caller's side by Asterisk: heard.wav is what the caller heard from the agent.
ari-agent call --say "Hi, I'd like to check the status of my order please." \
               --say "four five six seven" --say "No, that's all, thank you."
echo "The agent's side of that call: $STATE/agent.log"
cat <<EOT

The agent is serving calls (pid $(cat "$STATE/agent.pid"), log $STATE/agent.log).
Another demo call:   .venv/bin/ari-agent call --say "What are your opening hours?" --say "No thanks, goodbye."
Type to the agent:   .venv/bin/ari-agent chat
Stop everything:     kill \$(cat $STATE/agent.pid) \$(cat $STATE/backend.pid); .venv/bin/ari-agent pbx down
EOT

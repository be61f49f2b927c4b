#!/bin/bash
# HEALTHCHECK of the ari-agent Asterisk image: ARI answers GET /ari/asterisk/info (HTTP 200) with
# the agent's credentials. Plain bash (/dev/tcp), so the image needs no curl; the password goes in
# a header, never on a command line.
set -euo pipefail
user=${ARI_AGENT__ARI__USERNAME:-ari-agent}
password=${ARI_AGENT__ARI__PASSWORD:-ari-agent-dev}  # unset: the entrypoint kept ari.conf's dev one
auth=$(printf '%s:%s' "$user" "$password" | base64 -w0)
exec 3<>/dev/tcp/127.0.0.1/8088
printf 'GET /ari/asterisk/info HTTP/1.0\r\nHost: 127.0.0.1:8088\r\nAuthorization: Basic %s\r\n\r\n' "$auth" >&3
status=""
IFS=$' \t\r' read -r -t 5 _ status _ <&3 || true
exec 3<&-
if [ "$status" = "200" ]; then
  exit 0
fi
echo "ARI GET /ari/asterisk/info: ${status:-no answer}" >&2
exit 1

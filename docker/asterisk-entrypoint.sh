#!/bin/bash
# Entrypoint of the ari-agent Asterisk image (docker/asterisk.Dockerfile).
#
# No secret lives in the image. At every start the ARI password and the AMI secret come from the
# environment and are written into this container's copy of ari.conf / manager.conf:
#   ARI_AGENT__ARI__PASSWORD  password of ARI user "ari-agent" (the agent reads the same variable);
#                             unset: ari.conf keeps its development password (a warning says so)
#   ASTERISK_AMI_SECRET       secret of AMI user "ari-agent"; unset: a random one nobody knows
# Then Asterisk runs in the foreground as the package's "asterisk" user; arguments are passed on.
set -euo pipefail

CONF_DIR=/etc/ari-agent-asterisk
RUN_DIR=/run/ari-agent-asterisk
LOG_DIR=/var/log/ari-agent-asterisk

say() { echo "asterisk-entrypoint: $*" >&2; }
die() { say "$*"; exit 64; }

# A value must pass through Asterisk's config syntax unchanged: ";" starts a comment there.
check_value() { # NAME VALUE
  case "$2" in
    *";"* | *$'\n'* | *$'\r'*) die "$1 must not contain ';' or line breaks" ;;
    " "* | *" " | $'\t'* | *$'\t') die "$1 must not start or end with a blank" ;;
  esac
}

# set_key FILE SECTION KEY VALUE: rewrite the "KEY = ..." line inside [SECTION] of FILE.
set_key() {
  local file=$1 section=$2 key=$3 tmp
  tmp=$(mktemp "$file.XXXXXX")
  if ! VALUE=$4 awk -v section="$section" -v key="$key" '
      /^[ \t]*\[/ { in_section = ($0 ~ ("^[ \t]*\\[" section "\\]")) }
      in_section && $0 ~ ("^[ \t]*" key "[ \t]*=") { print key " = " ENVIRON["VALUE"]; found = 1; next }
      { print }
      END { if (!found) exit 3 }' "$file" >"$tmp"; then
    rm -f "$tmp"
    die "no '$key =' line in [$section] of $file"
  fi
  chgrp asterisk "$tmp"
  chmod 0640 "$tmp"
  mv "$tmp" "$file"
}

if [ -n "${ARI_AGENT__ARI__PASSWORD:-}" ]; then
  check_value ARI_AGENT__ARI__PASSWORD "$ARI_AGENT__ARI__PASSWORD"
  set_key "$CONF_DIR/ari.conf" ari-agent password "$ARI_AGENT__ARI__PASSWORD"
else
  say "WARNING: ARI_AGENT__ARI__PASSWORD is not set: ARI keeps the development password of ari.conf"
fi

ami_secret=${ASTERISK_AMI_SECRET:-}
if [ -z "$ami_secret" ]; then
  ami_secret=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  say "ASTERISK_AMI_SECRET is not set: AMI user ari-agent gets a random secret (no one can log in)"
fi
check_value ASTERISK_AMI_SECRET "$ami_secret"
set_key "$CONF_DIR/manager.conf" ari-agent secret "$ami_secret"
unset ASTERISK_AMI_SECRET ami_secret

# Directories may be fresh volumes or bind mounts; a restarted container may hold a stale control
# socket and pid file (nothing else runs in this container).
install -d -o asterisk -g asterisk -m 0755 "$RUN_DIR" "$LOG_DIR"
rm -f "$RUN_DIR/asterisk.ctl" "$RUN_DIR/asterisk.pid"

exec /usr/sbin/asterisk -C "$CONF_DIR/asterisk.conf" -f -n -U asterisk -G asterisk "$@"

# syntax=docker/dockerfile:1
# Asterisk 22 for ari-agent: the same PBX `ari-agent pbx up` builds (ari_agent/ops/localpbx.py),
# as an image. Build from the repository root:
#   docker build -f docker/asterisk.Dockerfile -t ari-agent-asterisk .
#
# bookworm has no asterisk package; Debian sid has Asterisk 22. sid moves: for a reproducible
# build pin a dated sid image, e.g. --build-arg DEBIAN_IMAGE=debian:sid-20261101.
ARG DEBIAN_IMAGE=debian:sid
FROM ${DEBIAN_IMAGE}

# Same apt tweaks as localpbx.py: sid's Release files can read as expired, no recommends, and
# installs start no services.
RUN printf 'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\n' \
        > /etc/apt/apt.conf.d/99ari-agent \
 && printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d

# The package list is PACKAGES in ari_agent/ops/localpbx.py: keep them the same.
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        asterisk asterisk-modules asterisk-config \
 && apt-get clean && rm -rf /var/lib/apt/lists/*

# The project's own config dir, as localpbx.py installs it: asterisk-config/*.conf at the top,
# dialplan/*.conf under dialplan/ (extensions.conf includes "dialplan/*.conf").
COPY asterisk-config/*.conf /etc/ari-agent-asterisk/
COPY dialplan/*.conf /etc/ari-agent-asterisk/dialplan/
COPY docker/asterisk.conf /etc/ari-agent-asterisk/asterisk.conf
COPY docker/asterisk-entrypoint.sh /usr/local/bin/asterisk-entrypoint
COPY docker/asterisk-healthcheck.sh /usr/local/bin/asterisk-healthcheck

# astmoddir: the multiarch module dir (/usr/lib/<triplet>/asterisk/modules), picked as
# _asterisk_conf() picks it: the last match, sorted; /usr/lib/asterisk/modules when there is none.
# Directories as localpbx.py creates them. Asterisk runs as the package's "asterisk" user (the
# local PBX runs it as root inside its chroot). The calls dir holds test-caller WAVs and their
# recordings (dialplan/test-caller.conf) and is shared with the agent container.
RUN set -eu; \
    chmod 0755 /usr/local/bin/asterisk-entrypoint /usr/local/bin/asterisk-healthcheck; \
    moddir=$(ls -d /usr/lib/*/asterisk/modules 2>/dev/null | sort | tail -n 1); \
    if [ -n "$moddir" ]; then \
        sed -i "s|^astmoddir => .*|astmoddir => $moddir|" /etc/ari-agent-asterisk/asterisk.conf; \
    fi; \
    test -f "$(sed -n 's/^astmoddir => //p' /etc/ari-agent-asterisk/asterisk.conf)/res_ari.so"; \
    grep -q '^\[directories\]$' /etc/ari-agent-asterisk/asterisk.conf; \
    install -d -o asterisk -g asterisk -m 0755 /run/ari-agent-asterisk /var/log/ari-agent-asterisk; \
    install -d -m 0755 /var/lib/ari-agent; \
    install -d -m 1777 /var/lib/ari-agent/calls

# Bound to 127.0.0.1 by the config files (run it with host networking, see docker/compose.yaml):
#   8088/tcp ARI + WebSocket media, 5038/tcp AMI, 5060/udp SIP, 10000-20000/udp RTP.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 CMD ["/usr/local/bin/asterisk-healthcheck"]

# The entrypoint sets the ARI password / AMI secret from the environment, then runs
#   asterisk -C /etc/ari-agent-asterisk/asterisk.conf -f -n -U asterisk -G asterisk
ENTRYPOINT ["/usr/local/bin/asterisk-entrypoint"]

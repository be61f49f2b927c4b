"""A local Asterisk 22 for development and CI, without Docker.

Builds (once, cached outside the repository) a Debian sid rootfs with Asterisk 22 via debootstrap,
installs the project's ``asterisk-config/`` and ``dialplan/`` into its own config directory, starts
Asterisk bound to 127.0.0.1, waits until ARI answers, and stops it by its own PID only.

Everything here is idempotent: ``up`` on a running PBX re-installs the config and reloads it;
``down`` on a stopped one does nothing.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ari_agent.errors import AriAgentError
from ari_agent.ops.pbx_tls import TlsFiles, ensure_tls

PACKAGES = ("asterisk", "asterisk-modules", "asterisk-config")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CONF_DIR_IN_ROOT = "/etc/ari-agent-asterisk"
RUN_DIR_IN_ROOT = "/run/ari-agent-asterisk"  # not /var/run: a symlink the host side would follow
LOG_DIR_IN_ROOT = "/var/log/ari-agent-asterisk"
# Where test-caller WAVs and recordings live inside the PBX filesystem (see dialplan/test-caller.conf).
CALLS_DIR_IN_ROOT = "/var/lib/ari-agent/calls"
# The PBX's own TLS material (a CA generated for this PBX and the server certificate it signed); http.conf
# points its TLS listener here. Never in the repository.
TLS_DIR_IN_ROOT = "/var/lib/ari-agent/tls"
TLS_ARI_URL = "https://127.0.0.1:8089"  # http.conf tlsbindaddr; the plain listener stays on 8088
READY_MARKER = ".ari-agent-rootfs-ready"


class PbxError(AriAgentError):
    """The local PBX could not be built, started or stopped; the message says why in plain words."""


def project_root() -> Path:
    """The checkout holding asterisk-config/ and dialplan/ (env ARI_AGENT_PROJECT_DIR overrides)."""
    env = os.environ.get("ARI_AGENT_PROJECT_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "asterisk-config").is_dir() and (parent / "dialplan").is_dir():
            return parent
    raise PbxError("cannot find asterisk-config/ and dialplan/: set ARI_AGENT_PROJECT_DIR to the checkout")


@dataclass(frozen=True)
class PbxStatus:
    running: bool
    pid: int | None
    ari_ok: bool
    root: Path
    built: bool

    def describe(self) -> str:
        if not self.built:
            return f"not built (rootfs {self.root} missing; run: ari-agent pbx up)"
        if not self.running:
            return f"stopped (rootfs {self.root})"
        return f"running pid={self.pid} ari={'up' if self.ari_ok else 'not answering'} rootfs={self.root}"


class LocalPbx:
    def __init__(
        self,
        root: Path | None = None,
        mirror: str | None = None,
        ari_url: str = "http://127.0.0.1:8088",
        ari_user: str = "ari-agent",
        ari_password: str = "ari-agent-dev",
    ) -> None:
        self.root = root or Path(os.environ.get("ARI_AGENT_PBX_ROOT", "/var/cache/ari-agent/pbx-rootfs"))
        self.mirror = mirror or os.environ.get("ARI_AGENT_DEBIAN_MIRROR", DEFAULT_MIRROR)
        self.ari_url = ari_url.rstrip("/")
        self._auth = "Basic " + base64.b64encode(f"{ari_user}:{ari_password}".encode()).decode()

    # ------------------------------------------------------------------ paths
    def host_path(self, path_in_root: str) -> Path:
        return self.root / path_in_root.lstrip("/")

    @property
    def pid_file(self) -> Path:
        return self.host_path(f"{RUN_DIR_IN_ROOT}/asterisk.pid")

    @property
    def calls_dir(self) -> Path:
        return self.host_path(CALLS_DIR_IN_ROOT)

    @property
    def tls(self) -> TlsFiles:
        """The TLS files (host paths): ``tls.ca_cert`` is what an agent verifies Asterisk against."""
        return TlsFiles(self.host_path(TLS_DIR_IN_ROOT))

    # ------------------------------------------------------------------ build
    def is_built(self) -> bool:
        return (self.root / READY_MARKER).is_file() and (self.root / "usr/sbin/asterisk").is_file()

    def build(self, log: list[str] | None = None) -> None:
        """debootstrap a sid rootfs and install Asterisk into it (skipped when already built)."""
        if self.is_built():
            return
        _require_root()
        if shutil.which("debootstrap") is None:
            raise PbxError("debootstrap is not installed (apt-get install debootstrap)")
        self._check_mirror()
        tmp = self.root.with_name(self.root.name + ".building")
        if tmp.exists():
            _unmount_all(tmp)
            shutil.rmtree(tmp)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        _run(["debootstrap", "--variant=minbase", "sid", str(tmp), self.mirror], "debootstrap of Debian sid")
        (tmp / "usr/sbin/policy-rc.d").write_text("#!/bin/sh\nexit 101\n")
        (tmp / "usr/sbin/policy-rc.d").chmod(0o755)
        (tmp / "etc/apt/apt.conf.d/99ari-agent").write_text(
            'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\n'
        )
        shutil.copyfile("/etc/resolv.conf", tmp / "etc/resolv.conf")
        _mount_all(tmp)
        try:
            env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
            _run(["chroot", str(tmp), "apt-get", "update", "-q"], "apt-get update inside the rootfs", env)
            _run(
                ["chroot", str(tmp), "apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
                "installing Asterisk inside the rootfs",
                env,
            )
            _run(["chroot", str(tmp), "apt-get", "clean"], "apt-get clean", env)
        finally:
            _unmount_all(tmp)
        (tmp / READY_MARKER).write_text(",".join(PACKAGES) + "\n")
        if self.root.exists():
            shutil.rmtree(self.root)
        tmp.rename(self.root)

    def _check_mirror(self) -> None:
        url = f"{self.mirror}/dists/sid/Release"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=15):
                pass
        except (urllib.error.URLError, OSError) as exc:
            raise PbxError(f"the Debian mirror {self.mirror} is unreachable ({exc}); set ARI_AGENT_DEBIAN_MIRROR") \
                from None

    # ------------------------------------------------------------------ config
    def install_config(self, project: Path | None = None) -> str:
        """Copy asterisk-config/*.conf and dialplan/*.conf into the PBX's own config dir.

        Returns a hash of what was installed, so callers can tell whether a reload is needed."""
        project = project or project_root()
        conf = self.host_path(CONF_DIR_IN_ROOT)
        if conf.exists():
            shutil.rmtree(conf)
        (conf / "dialplan").mkdir(parents=True)
        digest = hashlib.sha256()
        for src in sorted((project / "asterisk-config").glob("*.conf")):
            text = src.read_text()
            digest.update(src.name.encode() + text.encode())
            (conf / src.name).write_text(text)
        for src in sorted((project / "dialplan").glob("*.conf")):
            text = src.read_text()
            digest.update(b"dialplan/" + src.name.encode() + text.encode())
            (conf / "dialplan" / src.name).write_text(text)
        # asterisk.conf is generated: its directories point into this PBX's own tree.
        (conf / "asterisk.conf").write_text(_asterisk_conf(self.root))
        for d in (RUN_DIR_IN_ROOT, LOG_DIR_IN_ROOT, CALLS_DIR_IN_ROOT, "/var/spool/asterisk", "/var/lib/asterisk"):
            self.host_path(d).mkdir(parents=True, exist_ok=True)
        self.calls_dir.chmod(0o1777)
        ensure_tls(self.tls.directory)  # kept while valid: agents keep trusting the same CA
        return digest.hexdigest()

    # ------------------------------------------------------------------ run
    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _is_our_asterisk(pid, self.root) else None

    def status(self) -> PbxStatus:
        pid = self.pid()
        return PbxStatus(pid is not None, pid, pid is not None and self.ari_ready(), self.root, self.is_built())

    def ari_ready(self) -> bool:
        req = urllib.request.Request(f"{self.ari_url}/ari/asterisk/info", headers={"Authorization": self._auth})
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def up(self, timeout_s: float = 60.0) -> PbxStatus:
        _require_root()
        self.build()
        self.install_config()
        if self.pid() is not None:
            self.cli("core reload")
            self._wait_ari(timeout_s)
            return self.status()
        _mount_all(self.root)
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        log = self.host_path(f"{LOG_DIR_IN_ROOT}/console.log")
        with open(log, "ab") as out:
            subprocess.Popen(
                ["chroot", str(self.root), "/usr/sbin/asterisk", "-C", f"{CONF_DIR_IN_ROOT}/asterisk.conf",
                 "-f", "-n", "-q"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self._wait_ari(timeout_s)
        return self.status()

    def _wait_ari(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.pid() is not None and self.ari_ready():
                return
            time.sleep(0.1)
        tail = ""
        log = self.host_path(f"{LOG_DIR_IN_ROOT}/console.log")
        with contextlib.suppress(OSError):
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise PbxError(f"Asterisk did not answer on {self.ari_url}/ari within {timeout_s:.0f}s; console log:\n{tail}")

    def cli(self, command: str) -> str:
        """Run an Asterisk CLI command against the running PBX (``asterisk -rx``)."""
        res = subprocess.run(
            ["chroot", str(self.root), "/usr/sbin/asterisk", "-C", f"{CONF_DIR_IN_ROOT}/asterisk.conf", "-rx", command],
            capture_output=True, text=True, timeout=20, check=False,
        )
        return res.stdout + res.stderr

    def crash(self, timeout_s: float = 5.0) -> bool:
        """``kill -9`` this PBX's Asterisk by its own PID (a crash, for fault tests: no hang-ups, no
        events, the ARI WebSocket just drops). Returns True when one was running; ``up`` restarts it."""
        pid = self.pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not _wait_gone(pid, timeout_s):
            raise PbxError(f"Asterisk pid {pid} still running {timeout_s:.0f}s after SIGKILL")
        return True

    def down(self, timeout_s: float = 10.0) -> bool:
        """Stop Asterisk by its own PID. Returns True when one was running."""
        pid = self.pid()
        if pid is None:
            _unmount_all(self.root)
            return False
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.cli("core stop now")
        if not _wait_gone(pid, timeout_s / 2):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, timeout_s / 2):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 2)
        _unmount_all(self.root)
        return True


def _asterisk_conf(root: Path) -> str:
    moddir = "/usr/lib/asterisk/modules"
    for cand in sorted(root.glob("usr/lib/*/asterisk/modules")):
        moddir = "/" + str(cand.relative_to(root))
    return f"""; Generated by ari-agent (ops/localpbx.py). Section WITHOUT "(!)": with it, it is only a template.
[directories]
astetcdir => {CONF_DIR_IN_ROOT}
astmoddir => {moddir}
astvarlibdir => /var/lib/asterisk
astdbdir => /var/lib/asterisk
astkeydir => /var/lib/asterisk
astdatadir => /usr/share/asterisk
astagidir => /usr/share/asterisk/agi-bin
astspooldir => /var/spool/asterisk
astrundir => {RUN_DIR_IN_ROOT}
astlogdir => {LOG_DIR_IN_ROOT}
astsbindir => /usr/sbin

[options]
verbose = 1
debug = 0
nofork = yes
documentation_language = en_US
"""


def _require_root() -> None:
    if os.geteuid() != 0:
        raise PbxError("the local PBX needs root (debootstrap, chroot, mounts): run with sudo")


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-12:])
        raise PbxError(f"{what} failed (exit {res.returncode}):\n{tail}")


def _mounts(root: Path) -> list[tuple[str, Path, list[str]]]:
    return [
        ("proc", root / "proc", ["-t", "proc", "proc"]),
        ("devpts", root / "dev/pts", ["-t", "devpts", "-o", "newinstance,ptmxmode=0666", "devpts"]),
        ("shm", root / "dev/shm", ["-t", "tmpfs", "shm"]),
    ]


def _is_mounted(path: Path) -> bool:
    try:
        text = Path("/proc/self/mounts").read_text()
    except OSError:
        return False
    target = str(path.resolve())
    return any(line.split()[1] == target for line in text.splitlines() if len(line.split()) > 1)


def _mount_all(root: Path) -> None:
    for _name, target, args in _mounts(root):
        target.mkdir(parents=True, exist_ok=True)
        if not _is_mounted(target):
            _run(["mount", *args, str(target)], f"mounting {target}")
    dev = root / "dev"
    for node, major, minor in (("null", 1, 3), ("zero", 1, 5), ("random", 1, 8), ("urandom", 1, 9)):
        p = dev / node
        if not p.exists():
            with contextlib.suppress(OSError):
                os.mknod(p, 0o666 | 0o020000, os.makedev(major, minor))
                p.chmod(0o666)
    ptmx = dev / "ptmx"
    if not ptmx.exists():
        with contextlib.suppress(OSError):
            ptmx.symlink_to("pts/ptmx")


def _unmount_all(root: Path) -> None:
    for _name, target, _args in reversed(_mounts(root)):
        if _is_mounted(target):
            subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


def _is_our_asterisk(pid: int, root: Path) -> bool:
    """True only when ``pid`` is an asterisk process running inside ``root`` (never kill by name)."""
    try:
        exe_root = os.readlink(f"/proc/{pid}/root")
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and cmdline[0].endswith(b"asterisk") and Path(exe_root) == root.resolve()


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    return False

"""`ari-agent pbx up` refuses plainly when it cannot work: not root, or the Debian mirror unreachable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ari_agent.cli import main
from ari_agent.ops import localpbx
from ari_agent.ops.localpbx import LocalPbx, PbxError


def test_not_root_is_a_plain_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(localpbx.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("ARI_AGENT__PBX__ROOT", str(tmp_path / "rootfs"))
    assert main(["pbx", "up"]) == 2
    err = capsys.readouterr().err
    assert "needs root" in err and "Traceback" not in err


def test_unreachable_mirror_is_a_plain_error(tmp_path: Path) -> None:
    if localpbx.shutil.which("debootstrap") is None or localpbx.os.geteuid() != 0:
        pytest.fail("this test runs as root with debootstrap installed (scripts/test.sh)")
    pbx = LocalPbx(root=tmp_path / "rootfs", mirror="http://127.0.0.1:9/debian")  # nothing listens on port 9
    with pytest.raises(PbxError, match=re.escape("mirror http://127.0.0.1:9/debian is unreachable")):
        pbx.build()
    assert not (tmp_path / "rootfs").exists()

"""Config: one YAML file + environment overrides; a bad file is refused with file:line, key path, reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_agent.cli import main
from ari_agent.config import load_config
from ari_agent.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "agent.yaml"
    p.write_text(text)
    return p


def test_defaults_and_env_override() -> None:
    cfg = load_config(None, env={"ARI_AGENT__ARI__PASSWORD": "12345", "ARI_AGENT__MEDIA__FORMAT": "slin",
                                 "ARI_AGENT__ARI__REQUEST_TIMEOUT_S": "2.5"})
    assert cfg.ari.password.get_secret_value() == "12345"
    assert cfg.media.format == "slin"
    assert cfg.ari.request_timeout_s == 2.5
    assert "12345" not in repr(cfg)


def test_file_values_and_env_wins(tmp_path: Path) -> None:
    p = write(tmp_path, "ari:\n  url: http://pbx.example:8088/\n  app: acme\nmedia:\n  format: alaw\n")
    cfg = load_config(p, env={"ARI_AGENT__ARI__APP": "acme2"})
    assert cfg.ari.url == "http://pbx.example:8088"
    assert cfg.ari.app == "acme2"
    assert cfg.media.format == "alaw"


@pytest.mark.parametrize(
    ("text", "line", "key", "reason"),
    [
        ("ari:\n  url: ftp://x\n", 2, "ari.url", "must start with http"),
        ("media:\n  formatt: ulaw\n", 2, "media.formatt", "unknown key"),
        ("media:\n  format: opus\n", 2, "media.format", "'ulaw', 'alaw' or 'slin'"),
        ("ari:\n  url: [http://x\n", 3, "<root>", "invalid YAML"),
        ("- a\n- b\n", 1, "<root>", "top level must be a mapping"),
        ("media:\n  jitter_depth_frames: 0\n", 2, "media.jitter_depth_frames", "greater than or equal to 1"),
        ("agent:\n  max_call_s: soon\n", 2, "agent.max_call_s", "valid number"),
        ("ari:\n  app: x\nbogus: 1\n", 3, "bogus", "unknown key"),
        ("ari:\n  app: x\n  app: y\n", 3, "ari.app", "duplicate key (first at line 2)"),
        ("media:\n  format: ulaw\nmedia:\n  format: alaw\n", 3, "media", "duplicate key (first at line 1)"),
        ("ari: {app: x, url: 'http://a', app: y}\n", 1, "ari.app", "duplicate key"),
        ("ari:\n  ? [a, b]\n  : x\n", 2, "ari", "a key must be a plain value"),
    ],
)
def test_bad_file_is_refused_with_location(tmp_path: Path, text: str, line: int, key: str, reason: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(p, env={})
    e = err.value
    assert e.file == str(p)
    assert e.line == line, str(e)
    assert (e.key_path or "<root>") == key, str(e)
    assert reason in e.reason, str(e)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml", env={})


def test_bad_env_override_names_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, env={"ARI_AGENT__MEDIA__JITTER_DEPTH_FRAMES": "many"})
    assert err.value.key_path == "media.jitter_depth_frames"


def test_cli_prints_one_line_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write(tmp_path, "media:\n  format: opus\n")
    rc = main(["--config", str(p), "pbx", "status"])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{p}:2: media.format:" in err
    assert "Traceback" not in err


def test_file_that_is_not_utf8_is_refused_with_offset(tmp_path: Path) -> None:
    p = tmp_path / "agent.yaml"
    p.write_bytes(b"ari:\n  app: caf\xe9\n")
    with pytest.raises(ConfigError) as err:
        load_config(p, env={})
    assert err.value.line == 2 and "not valid UTF-8 (byte 0xe9 at byte offset 15)" in err.value.reason, str(err.value)

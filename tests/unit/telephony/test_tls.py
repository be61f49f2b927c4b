"""The ARI TLS context: verification always on, bad settings refused before any connection."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from ari_agent.ops.pbx_tls import ensure_tls, needs_renewal
from ari_agent.telephony.tls import TlsConfigError, tls_context


def test_https_verifies_against_the_given_ca(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path / "tls")
    assert not needs_renewal(files) and ensure_tls(tmp_path / "tls").ca_cert.read_bytes() == files.ca_cert.read_bytes()
    ctx = tls_context("https://127.0.0.1:8089", files.ca_cert)
    assert ctx is not None and ctx.ssl.verify_mode == ssl.CERT_REQUIRED and ctx.ssl.check_hostname
    assert (files.ca_key.stat().st_mode & 0o777) == 0o600


def test_plain_url_has_no_context_and_refuses_a_ca(tmp_path: Path) -> None:
    assert tls_context("http://127.0.0.1:8088", None) is None
    with pytest.raises(TlsConfigError, match="not TLS"):
        tls_context("http://127.0.0.1:8088", tmp_path / "ca.pem")


@pytest.mark.parametrize("url", ["https://user:secret@127.0.0.1:8089", "ftp://127.0.0.1"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(TlsConfigError) as err:
        tls_context(url, None)
    assert "secret" not in str(err.value)


def test_missing_or_bad_ca_file(tmp_path: Path) -> None:
    with pytest.raises(TlsConfigError, match="no such file"):
        tls_context("https://127.0.0.1:8089", tmp_path / "missing.pem")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(TlsConfigError, match="not a readable PEM"):
        tls_context("https://127.0.0.1:8089", bad)

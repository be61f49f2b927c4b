"""TLS for every connection the agent opens to Asterisk's HTTP server (ARI REST, the events WebSocket,
WebSocket media): one verifying context per Asterisk, built from ``ari.ca_file``.

Verification is always on: certificate chain to the configured CA (or the system trust store) and the
host name in the URL. A ``http://`` URL gets no context (plain), and a CA file set for a plain URL is
refused, so a configuration that asks for checks can never end up sending credentials in the clear.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from ari_agent.errors import TelephonyError


class TlsConfigError(TelephonyError):
    """The TLS settings cannot work (unreadable CA file, CA for a plain URL, credentials in the URL)."""


@dataclass(frozen=True)
class TlsContext:
    ssl: ssl.SSLContext
    ca_file: Path | None

    def trust(self) -> str:
        return f"the CA in {self.ca_file}" if self.ca_file else "the system trust store"


def tls_context(url: str, ca_file: Path | None) -> TlsContext | None:
    """The verifying context for ``url`` (None for plain http/ws); TlsConfigError when it cannot work."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise TlsConfigError("credentials in the ARI URL: set ari.username / ari.password instead")
    if parts.scheme in ("http", "ws"):
        if ca_file is not None:
            raise TlsConfigError(f"ari.ca_file is set but {parts.scheme}://{parts.netloc} is not TLS: "
                                 "use https:// (the TLS listener) or remove ari.ca_file")
        return None
    if parts.scheme not in ("https", "wss"):
        raise TlsConfigError(f"unsupported URL scheme {parts.scheme!r} (http, https, ws or wss)")
    try:
        ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    except FileNotFoundError:
        raise TlsConfigError(f"ari.ca_file {ca_file}: no such file") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise TlsConfigError(f"ari.ca_file {ca_file}: not a readable PEM CA certificate ({exc})") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # create_default_context already verifies: CERT_REQUIRED and the host name (made explicit here).
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    return TlsContext(ctx, ca_file)


def tls_failure(exc: aiohttp.ClientSSLError, url: str, tls: TlsContext | None) -> str:
    """One plain sentence for a failed TLS connection (no credentials: the URL carries none)."""
    netloc = urlsplit(url).netloc
    trust = tls.trust() if tls is not None else "the system trust store"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason = getattr(exc.certificate_error, "verify_message", None) or str(exc.certificate_error)
        return (f"TLS certificate of {netloc} not accepted ({reason}) when checked against {trust}: "
                "is ari.ca_file the CA that signed Asterisk's certificate, and does the URL's host name match it?")
    return f"TLS handshake with {netloc} failed ({exc}): is that port Asterisk's TLS listener (http.conf tlsbindaddr)?"

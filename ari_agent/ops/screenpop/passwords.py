"""Agent passwords stored as scrypt hashes (``hashlib.scrypt``), never in clear.

Format: ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``. Verification is constant-time; a malformed
stored hash verifies nothing (and says why in the log, not to the browser).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets

log = logging.getLogger(__name__)

N, R, P = 2**14, 8, 1
_MAX_N = 2**20  # bounds the memory a (mis)configured hash can make a login cost
_DKLEN = 32


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    if not password:
        raise ValueError("empty password")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=_DKLEN, maxmem=256 * 1024 * 1024)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n_s, r_s, p_s, salt_s, digest_s = stored.split("$")
        n, r, p = int(n_s), int(r_s), int(p_s)
        salt = base64.b64decode(salt_s, validate=True)
        digest = base64.b64decode(digest_s, validate=True)
        if scheme != "scrypt" or not (2 <= n <= _MAX_N and n & (n - 1) == 0) or not (1 <= r <= 32 and 1 <= p <= 16):
            raise ValueError("unsupported parameters")
    except ValueError as exc:
        log.error("screen-pop: a configured password_hash is not a scrypt hash (%s)", exc)
        return False
    try:
        got = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=len(digest),
                             maxmem=256 * 1024 * 1024)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got, digest)

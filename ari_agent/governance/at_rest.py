"""Encryption at rest: AES-256-GCM blobs that name their key, for recordings and call logs.

A sealed blob is ``b"ARIE1" | len(key_id) | key_id | nonce(12) | ciphertext+tag(16)``. The header
(magic and key id) and the caller's associated data (the call id, for a recording) are
authenticated, not encrypted: a blob moved to another call's directory, a key id edited, or one bit
flipped anywhere fails to open with one clear error, never garbage.

Keys: lines ``key_id base64(32 bytes)`` (``ari-agent storage keygen``), from
``storage.encryption_key_file`` (refused when other users may read it) or the secret
``storage.encryption_keys`` (env ``ARI_AGENT__STORAGE__ENCRYPTION_KEYS``, lines separated by ``;``).
**Rotation**: append a new line; the last key encrypts, every listed key still decrypts (the blob
says which one), and ``ari-agent storage rekey`` re-seals old blobs under the newest key before the
old line is removed. Key material never reaches a log or an error message, only key ids.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ari_agent.config import Config
from ari_agent.errors import AriAgentError

MAGIC = b"ARIE1"
NONCE_SIZE = 12
TAG_SIZE = 16
KEY_SIZE = 32  # AES-256
SEALED_SUFFIX = ".enc"
_KEY_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class AtRestError(AriAgentError):
    """A key that cannot be loaded, or a blob that cannot be opened (wrong key, tampered, not sealed)."""


@dataclass(frozen=True)
class Keyring:
    """Loaded keys by id; ``current`` (the last one listed) encrypts."""

    keys: dict[str, bytes]
    current: str

    @classmethod
    def from_lines(cls, lines: Iterable[str], source: str = "<keys>") -> Keyring:
        keys: dict[str, bytes] = {}
        current = ""
        for n, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 2 or not _KEY_ID.match(parts[0]):
                raise AtRestError(f"{source}:{n}: expected 'KEY_ID BASE64KEY' (id: letters, digits, _.:-)")
            key_id, encoded = parts
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise AtRestError(f"{source}:{n}: key '{key_id}' is not valid base64") from None
            if len(key) != KEY_SIZE:
                raise AtRestError(f"{source}:{n}: key '{key_id}' is {len(key)} bytes, AES-256 needs {KEY_SIZE}")
            if key_id in keys:
                raise AtRestError(f"{source}:{n}: key id '{key_id}' listed twice")
            keys[key_id] = key
            current = key_id
        if not keys:
            raise AtRestError(f"{source}: no keys (generate one with: ari-agent storage keygen)")
        return cls(keys, current)

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        try:
            st = path.stat()
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise AtRestError(f"cannot read key file {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise AtRestError(f"key file {path} is not UTF-8 text") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AtRestError(f"key file {path} is accessible by other users (mode {stat.S_IMODE(st.st_mode):o}): "
                              f"chmod 600 {path}")
        return cls.from_lines(text.splitlines(), str(path))


def generate_key_line(key_id: str) -> str:
    """A new key as a key-file line (``os.urandom``: the kernel's CSPRNG)."""
    if not _KEY_ID.match(key_id):
        raise AtRestError(f"key id '{key_id}': letters, digits and _.:- only, at most 64")
    return f"{key_id} {base64.b64encode(os.urandom(KEY_SIZE)).decode()}"


def _header(key_id: str) -> bytes:
    kid = key_id.encode()
    return MAGIC + bytes((len(kid),)) + kid


def key_id_of(blob: bytes) -> str:
    """The id of the key a blob was sealed with (AtRestError when it is not a sealed blob)."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 1:
        raise AtRestError("not an ari-agent encrypted blob (no ARIE1 header)")
    n = blob[len(MAGIC)]
    end = len(MAGIC) + 1 + n
    if n == 0 or len(blob) < end + NONCE_SIZE + TAG_SIZE:
        raise AtRestError("encrypted blob truncated")
    try:
        return blob[len(MAGIC) + 1:end].decode()
    except UnicodeDecodeError:
        raise AtRestError("encrypted blob has a malformed key id") from None


class Sealer:
    """Seals and opens blobs with a keyring; ``aad`` binds a blob to its context (e.g. the call id)."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def seal(self, data: bytes, aad: str) -> bytes:
        key_id = self.keyring.current
        header = _header(key_id)
        nonce = os.urandom(NONCE_SIZE)  # 96-bit random nonce: fine for < 2**32 blobs per key
        return header + nonce + AESGCM(self.keyring.keys[key_id]).encrypt(nonce, data, header + aad.encode())

    def open(self, blob: bytes, aad: str) -> bytes:
        key_id = key_id_of(blob)
        key = self.keyring.keys.get(key_id)
        if key is None:
            raise AtRestError(f"blob sealed with key '{key_id}', which is not loaded "
                              f"(loaded: {', '.join(self.keyring.keys)})")
        header = _header(key_id)
        nonce = blob[len(header):len(header) + NONCE_SIZE]
        try:
            return AESGCM(key).decrypt(nonce, blob[len(header) + NONCE_SIZE:], header + aad.encode())
        except InvalidTag:
            raise AtRestError(f"authentication failed (key '{key_id}'): the blob was altered, or it belongs to "
                              f"another context than '{aad}'") from None

    def rekey(self, blob: bytes, aad: str) -> bytes | None:
        """The blob sealed under the current key; None when it already is."""
        if key_id_of(blob) == self.keyring.current:
            return None
        return self.seal(self.open(blob, aad), aad)

    def binder(self, aad: str) -> Callable[[bytes], bytes]:
        """``seal`` with the associated data fixed (what the recorder is given)."""
        return lambda data: self.seal(data, aad)


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and a rename: never a half-written file. Mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def recording_aad(call_id: str) -> str:
    """The associated data of a call's recording and call log: the call's id (its directory name)."""
    return f"ari-agent:call:{call_id}"


_CACHE: dict[tuple[str, float, str], Sealer] = {}


def load_sealer(cfg: Config) -> Sealer | None:
    """The configured sealer (None when ``storage.encrypt_at_rest`` is off); AtRestError when it is on
    without a usable key. Cached per key source (and the key file's mtime: an edited file reloads)."""
    storage = cfg.storage
    if not storage.encrypt_at_rest:
        return None
    if storage.encryption_key_file is None and storage.encryption_keys is None:
        raise AtRestError("storage.encrypt_at_rest is on but no key: set storage.encryption_key_file or "
                          "ARI_AGENT__STORAGE__ENCRYPTION_KEYS (ari-agent storage keygen makes one)")
    secret = storage.encryption_keys.get_secret_value() if storage.encryption_keys is not None else ""
    path = storage.encryption_key_file
    try:
        mtime = path.stat().st_mtime if path is not None else 0.0
    except OSError as exc:
        raise AtRestError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    cache_key = (str(path or ""), mtime, secret)
    sealer = _CACHE.get(cache_key)
    if sealer is None:
        keyring = Keyring.from_file(path) if path is not None else \
            Keyring.from_lines(secret.split(";"), "ARI_AGENT__STORAGE__ENCRYPTION_KEYS")
        sealer = _CACHE[cache_key] = Sealer(keyring)
    return sealer


def recording_seal(cfg: Config, call_id: str) -> Callable[[bytes], bytes] | None:
    """What ``CallRecorder`` seals with for ``call_id`` (None: write plain WAV)."""
    sealer = load_sealer(cfg)
    return sealer.binder(recording_aad(call_id)) if sealer is not None else None

"""Encryption at rest (governance/at_rest.py): round trip, wrong key / tampered blob / other call →
one clear error, rotation, key loading; and the recorder and call log writing sealed files."""

from __future__ import annotations

import io
import os
import wave
from pathlib import Path

import numpy as np
import pytest

from ari_agent.call.call_log import CallLog
from ari_agent.call.recorder import CallRecorder
from ari_agent.config import load_config
from ari_agent.governance.at_rest import (
    MAGIC,
    AtRestError,
    Keyring,
    Sealer,
    generate_key_line,
    key_id_of,
    load_sealer,
    recording_aad,
    recording_seal,
)
from ari_agent.media.jitter import AudioFrame

K1, K2 = generate_key_line("k1"), generate_key_line("k2")


def sealer(*lines: str) -> Sealer:
    return Sealer(Keyring.from_lines(lines))


def test_round_trip_names_its_key() -> None:
    s = sealer(K1)
    for data in (b"", b"x", os.urandom(10_000)):
        blob = s.seal(data, "call-1")
        assert blob.startswith(MAGIC) and key_id_of(blob) == "k1"
        # plaintext long enough not to occur in random ciphertext by chance
        assert len(data) < 16 or data not in blob
        assert s.open(blob, "call-1") == data
    assert s.seal(b"same", "c") != s.seal(b"same", "c")  # a fresh nonce every time


def test_wrong_key_is_a_clear_error() -> None:
    blob = sealer(K1).seal(b"secret audio", "call-1")
    other_k1 = generate_key_line("k1")  # same id, other key material
    with pytest.raises(AtRestError, match="authentication failed"):
        sealer(other_k1).open(blob, "call-1")
    with pytest.raises(AtRestError, match="key 'k1', which is not loaded"):
        sealer(K2).open(blob, "call-1")


def test_other_context_is_refused() -> None:
    blob = sealer(K1).seal(b"secret audio", "call-1")
    with pytest.raises(AtRestError, match="another context than 'call-2'"):
        sealer(K1).open(blob, "call-2")


def test_every_tampered_byte_is_detected() -> None:
    s = sealer(K1)
    blob = s.seal(b"0123456789" * 5, "call-1")
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(AtRestError):
            s.open(bytes(tampered), "call-1")
    for cut in (0, 3, len(MAGIC) + 1, len(blob) - 1):
        with pytest.raises(AtRestError):
            s.open(blob[:cut], "call-1")
    with pytest.raises(AtRestError, match="not an ari-agent encrypted blob"):
        s.open(b"RIFF....WAVE", "call-1")


def test_rotation_newest_encrypts_all_decrypt() -> None:
    old = sealer(K1).seal(b"old", "c")
    both = sealer(K1, K2)
    assert both.keyring.current == "k2"
    assert both.open(old, "c") == b"old"
    new = both.seal(b"new", "c")
    assert key_id_of(new) == "k2"
    rekeyed = both.rekey(old, "c")
    assert rekeyed is not None and key_id_of(rekeyed) == "k2"
    assert sealer(K2).open(rekeyed, "c") == b"old"  # the old key can now be dropped
    assert both.rekey(new, "c") is None


@pytest.mark.parametrize(("lines", "error"), [
    ([], "no keys"),
    (["k1"], "expected 'KEY_ID BASE64KEY'"),
    (["k1 not*base64"], "not valid base64"),
    (["k1 AAAA"], "is 3 bytes, AES-256 needs 32"),
    ([K1, K1], "listed twice"),
    (["bad/id " + K1.split()[1]], "expected 'KEY_ID BASE64KEY'"),
])
def test_bad_key_lines(lines: list[str], error: str) -> None:
    with pytest.raises(AtRestError, match=error):
        Keyring.from_lines(lines, "keys.txt")


def test_key_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# rotated 2026-12\n{K1}\n{K2}\n")
    path.chmod(0o640)
    with pytest.raises(AtRestError, match="chmod 600"):
        Keyring.from_file(path)
    path.chmod(0o600)
    assert Keyring.from_file(path).current == "k2"
    with pytest.raises(AtRestError, match="cannot read key file"):
        Keyring.from_file(tmp_path / "missing")


def test_config_keys_from_env_and_errors(tmp_path: Path) -> None:
    assert load_sealer(load_config(env={})) is None
    assert recording_seal(load_config(env={}), "c") is None
    with pytest.raises(AtRestError, match="no key"):
        load_sealer(load_config(env={"ARI_AGENT__STORAGE__ENCRYPT_AT_REST": "true"}))
    cfg = load_config(env={"ARI_AGENT__STORAGE__ENCRYPT_AT_REST": "true",
                           "ARI_AGENT__STORAGE__ENCRYPTION_KEYS": f"{K1};{K2}"})
    s = load_sealer(cfg)
    assert s is not None and s.keyring.current == "k2"
    # secrets never in the error text
    bad = load_config(env={"ARI_AGENT__STORAGE__ENCRYPT_AT_REST": "true",
                           "ARI_AGENT__STORAGE__ENCRYPTION_KEYS": "k9 c2VjcmV0"})
    with pytest.raises(AtRestError) as exc:
        load_sealer(bad)
    assert "c2VjcmV0" not in str(exc.value)


def test_recorder_writes_a_sealed_wav(tmp_path: Path) -> None:
    s = sealer(K1)
    rec = CallRecorder(seal=s.binder(recording_aad("call-9")))
    rec.add(AudioFrame(seq=1, timestamp=0, pcm=np.arange(160, dtype=np.int16), concealed=False))
    path = rec.write(tmp_path / "call-9" / "received.wav")
    assert path.name == "received.wav.enc" and not (tmp_path / "call-9" / "received.wav").exists()
    assert path.stat().st_mode & 0o077 == 0
    blob = path.read_bytes()
    assert b"RIFF" not in blob
    with wave.open(io.BytesIO(s.open(blob, recording_aad("call-9")))) as w:
        assert w.getnframes() == 160 and w.getframerate() == 8000
    plain = CallRecorder().write(tmp_path / "call-8" / "received.wav")
    assert plain.read_bytes().startswith(b"RIFF")


def test_call_log_writes_sealed_json_lines(tmp_path: Path) -> None:
    s = sealer(K1)
    events = CallLog("call-3", 0.0)
    events.add("say", text="Your order has shipped")
    path = events.write(tmp_path / "call-3" / "events.jsonl", seal=s.binder(recording_aad("call-3")))
    assert b"shipped" not in path.read_bytes()
    assert b'"kind": "say"' in s.open(path.read_bytes(), recording_aad("call-3"))

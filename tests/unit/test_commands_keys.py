"""The command key: what a request's signature covers, and key files that cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.commands.keys import KeyProblem, read_key

SECRET = "5f2b8c0e4a1d9f7e3c6b2a0d8e4f1c7b9a3e5d2c8f0b6a4e"
TOPIC = "minewatch/v1/130825-TP001/gw01/cmd/ack"
REQUEST = {"id": "r-1", "ts": 1784476800000, "alert_id": "a-1", "by": "张工", "note": "on my way"}


def _key(tmp_path: Path, text: str, name: str = "command.key") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_an_hmac_signature_covers_the_request_and_its_topic(tmp_path: Path) -> None:
    key = read_key(_key(tmp_path, SECRET + "\n"))
    assert key.kind == "hmac-sha256" and SECRET not in repr(key)
    signed = {**REQUEST, "sig": key.sign(TOPIC, REQUEST)}
    assert key.verify(TOPIC, signed)
    # key order and the JSON's spacing do not matter: the canonical form does
    assert key.verify(TOPIC, dict(reversed(list(signed.items()))))
    assert not key.verify(TOPIC, {**signed, "note": "on my way!"})  # content changed
    assert not key.verify(TOPIC.replace("/ack", "/config"), signed)  # another command
    assert not key.verify(TOPIC.replace("gw01", "gw02"), signed)  # another gateway
    assert not key.verify(TOPIC, REQUEST)  # no sig
    assert not key.verify(TOPIC, {**REQUEST, "sig": "not hex"})
    other = read_key(_key(tmp_path, SECRET[::-1], "other.key"))
    assert not other.verify(TOPIC, signed)


def test_an_ed25519_public_key_verifies_what_the_private_key_signs(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    pub = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    platform = read_key(_key(tmp_path, pem, "platform.pem"))
    gateway = read_key(_key(tmp_path, pub.decode(), "command.pub"))
    assert platform.private and not gateway.private and gateway.kind == "ed25519"
    sig = platform.sign(TOPIC, REQUEST)
    assert len(sig) == 128
    assert gateway.verify(TOPIC, {**REQUEST, "sig": sig})
    assert not gateway.verify(TOPIC, {**REQUEST, "by": "someone else", "sig": sig})
    with pytest.raises(KeyProblem, match="private key"):
        gateway.sign(TOPIC, REQUEST)


@pytest.mark.parametrize(("text", "says"), [
    ("short-secret", "fewer than 32"),
    (SECRET + "\n" + SECRET, "more than one line"),
    ("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n", "not a readable PEM"),
])
def test_a_key_file_that_cannot_be_used_says_why_never_what_it_holds(tmp_path: Path, text: str,
                                                                     says: str) -> None:
    with pytest.raises(KeyProblem, match=says) as exc:
        read_key(_key(tmp_path, text))
    assert text.splitlines()[0] not in str(exc.value)  # the key is never quoted


def test_an_rsa_key_is_not_taken(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pub = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    pem = pub.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(KeyProblem, match="not an Ed25519 key"):
        read_key(_key(tmp_path, pem))


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(KeyProblem, match="cannot read .*nothing.key"):
        read_key(tmp_path / "nothing.key")

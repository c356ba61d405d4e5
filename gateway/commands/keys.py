"""The command key: who may command this gateway, and how a request proves it.

`[commands] key_file` names one file, read at start and never logged:

- an HMAC-SHA256 secret: one line of at least 32 characters (`openssl rand -hex 32`), used as
  its UTF-8 bytes; the platform signs with the same secret;
- an Ed25519 public key in PEM (`openssl genpkey -algorithm ed25519 -out platform.pem;
  openssl pkey -in platform.pem -pubout -out command.pub`); the platform keeps the private key.
  Ed25519 needs the `cryptography` package (`pip install 'minewatch[ed25519]'`).

A request's signature (`sig`, hex) covers the UTF-8 bytes of its topic, a newline, and the
canonical JSON (RFC 8785, `gateway.commands.canonical`) of the request without `sig`, so a
signed request is good for one command of one gateway only.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path

from gateway.commands.canonical import canonical

__all__ = ["CommandKey", "KeyProblem", "MIN_SECRET", "read_key", "signed_bytes"]

MIN_SECRET = 32


class KeyProblem(ValueError):
    """A key file that cannot be used; `hint` says what it should hold."""

    def __init__(self, message: str, hint: str = "", zh: str = "", hint_zh: str = ""):
        super().__init__(message)
        self.hint = hint
        self.zh = zh or message  # the config loader prints either (docs/contracts.md#site-config)
        self.hint_zh = hint_zh or hint


def signed_bytes(topic: str, request: dict) -> bytes:
    """What a request's signature covers: its topic, a newline, its canonical JSON without sig."""
    body = {k: v for k, v in request.items() if k != "sig"}
    return topic.encode("utf-8") + b"\n" + canonical(body)


@dataclass(frozen=True)
class CommandKey:
    kind: str  # "hmac-sha256" | "ed25519"
    key: object = field(repr=False)  # the secret's bytes, or a cryptography Ed25519 key object
    private: bool = False  # an Ed25519 private key: the platform's side, it can sign

    def sign(self, topic: str, request: dict) -> str:
        data = signed_bytes(topic, request)
        if self.kind == "hmac-sha256":
            assert isinstance(self.key, bytes)
            return hmac.new(self.key, data, hashlib.sha256).hexdigest()
        if not self.private:
            raise KeyProblem("an Ed25519 public key verifies; signing needs the private key",
                             "give the platform's private key (PEM)")
        return self.key.sign(data).hex()  # type: ignore[attr-defined]

    def verify(self, topic: str, request: dict) -> bool:
        sig = request.get("sig")
        if not isinstance(sig, str):
            return False
        try:
            given = bytes.fromhex(sig)
        except ValueError:
            return False
        data = signed_bytes(topic, request)
        if self.kind == "hmac-sha256":
            assert isinstance(self.key, bytes)
            return hmac.compare_digest(hmac.new(self.key, data, hashlib.sha256).digest(), given)
        from cryptography.exceptions import InvalidSignature

        public = self.key.public_key() if self.private else self.key  # type: ignore[attr-defined]
        try:
            public.verify(given, data)  # type: ignore[attr-defined]
        except InvalidSignature:
            return False
        return True


def read_key(path: Path) -> CommandKey:
    """The key in `path`; KeyProblem says what is wrong, never what the file holds."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise KeyProblem(f"cannot read {path}: {exc.strerror or exc}",
                         "a file readable by the gateway only",
                         f"无法读取 {path}：{exc.strerror or exc}", "只有网关可读的文件") from None
    except UnicodeDecodeError:
        raise KeyProblem(f"{path} is not text", "a hex secret or a PEM key",
                         f"{path} 不是文本文件", "十六进制密钥或 PEM 密钥") from None
    if text.startswith("-----BEGIN"):
        return _pem(path, text)
    if "\n" in text:
        raise KeyProblem(f"{path} holds more than one line", "one line: the HMAC secret",
                         f"{path} 不止一行", "一行：HMAC 密钥")
    if len(text) < MIN_SECRET:
        raise KeyProblem(f"{path} holds a secret of {len(text)} characters, fewer than "
                         f"{MIN_SECRET}", "a long random secret: `openssl rand -hex 32 > FILE`",
                         f"{path} 中的密钥只有 {len(text)} 个字符，少于 {MIN_SECRET}",
                         "足够长的随机密钥：`openssl rand -hex 32 > FILE`")
    return CommandKey("hmac-sha256", text.encode("utf-8"))


def _pem(path: Path, text: str) -> CommandKey:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import (
            Ed25519PrivateKey,
            Ed25519PublicKey,
        )
    except ImportError:
        raise KeyProblem(f"{path} is a PEM key: Ed25519 needs the cryptography package",
                         "pip install 'minewatch[ed25519]', or use an HMAC secret",
                         f"{path} 是 PEM 密钥：Ed25519 需要安装 cryptography",
                         "pip install 'minewatch[ed25519]'，或改用 HMAC 密钥") from None
    data = text.encode("ascii", errors="replace")
    try:
        if "PRIVATE KEY" in text.splitlines()[0]:
            key = serialization.load_pem_private_key(data, password=None)
            private = True
        else:
            key = serialization.load_pem_public_key(data)
            private = False
    except (ValueError, TypeError) as exc:
        raise KeyProblem(f"{path} is not a readable PEM key: {exc}",
                         "an Ed25519 public key (openssl pkey -pubout)",
                         f"{path} 不是可读的 PEM 密钥：{exc}",
                         "Ed25519 公钥（openssl pkey -pubout）") from None
    if not isinstance(key, Ed25519PublicKey | Ed25519PrivateKey):
        kind = type(key).__name__.removeprefix("_")
        raise KeyProblem(f"{path} holds a {kind}, not an Ed25519 key",
                         "openssl genpkey -algorithm ed25519",
                         f"{path} 中是 {kind}，不是 Ed25519 密钥",
                         "openssl genpkey -algorithm ed25519")
    return CommandKey("ed25519", key, private)

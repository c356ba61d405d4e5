"""The files a site config names, checked when it loads rather than when the daemon first needs
them: secret files (`password_file`, `status_token_file`, `token_file`: readable, one line,
not empty) and the MQTT uplink's TLS files (`tls_ca`, `tls_cert`, `tls_key`: PEM the TLS
library takes, a key that belongs to its certificate and needs no passphrase, since a daemon
has nobody to type one). A problem names the key and the file; the secret never appears."""

from __future__ import annotations

import ssl
from pathlib import Path

from gateway.config.reader import Reader
from gateway.i18n import t
from gateway.text_files import TextFileError, read_secret, read_text_file

__all__ = ["check_mqtt_files", "check_secret"]

_PEM_CERT = "-----BEGIN CERTIFICATE-----"
_RELATIVE = t("a relative path is taken from the site config's folder; the file must be readable "
              "by the user the gateway runs as", "相对路径从站点配置文件所在的文件夹算起；该文件必须"
              "能被运行网关的用户读取")


def check_secret(r: Reader, key: str, path: Path) -> None:
    """A secret file: one non-empty line (gateway.text_files.read_secret)."""
    try:
        read_secret(path)
    except TextFileError as exc:
        r.problem(key, t(f"{exc.where()}: {exc.reason.en}", f"{exc.where()}：{exc.reason.zh}"),
                  _RELATIVE if exc.unreadable else exc.hint)


def check_mqtt_files(r: Reader, p: str, password_file: Path | None, ca: Path | None,
                     cert: Path | None, key: Path | None) -> None:
    """`[uplink.mqtt]`'s password file and TLS files."""
    if password_file is not None:
        check_secret(r, f"{p}.password_file", password_file)
    if key is not None and cert is None:
        r.problem(f"{p}.tls_key", t("a client key without tls_cert is never used",
                                    "没有 tls_cert 时客户端私钥不会被使用"),
                  t("set tls_cert to the client certificate", "请把 tls_cert 设为客户端证书"))
    if ca is not None and _pem(r, f"{p}.tls_ca", ca, _PEM_CERT):
        try:
            ssl.create_default_context(cafile=str(ca))
        except (ssl.SSLError, OSError, ValueError) as exc:
            _tls_problem(r, f"{p}.tls_ca", ca, exc)
    if cert is None or not _pem(r, f"{p}.tls_cert", cert, _PEM_CERT):
        return
    if key is not None and not _pem(r, f"{p}.tls_key", key, "PRIVATE KEY-----"):
        return
    asked: list[bool] = []

    def passphrase() -> bytes:
        asked.append(True)
        return b""

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(
            str(cert), str(key) if key else None, password=passphrase)
    except (ssl.SSLError, OSError, ValueError) as exc:
        if asked:
            r.problem(f"{p}.tls_key" if key else f"{p}.tls_cert", t(
                f"{key or cert}: the private key is encrypted with a passphrase, which a daemon "
                "has nobody to type", f"{key or cert}：私钥有口令保护，守护进程无人输入口令"),
                t("write it without one: openssl pkey -in KEY -out KEY.plain, then chmod 600",
                  "导出不带口令的私钥：openssl pkey -in KEY -out KEY.plain，然后 chmod 600"))
        else:
            _tls_problem(r, f"{p}.tls_cert", cert, exc)


def _pem(r: Reader, key: str, path: Path, marker: str) -> bool:
    """The file reads as text and holds a PEM block with `marker`; a problem otherwise."""
    try:
        text = read_text_file(path).text
    except TextFileError as exc:
        r.problem(key, t(f"{exc.where()}: {exc.reason.en}", f"{exc.where()}：{exc.reason.zh}"),
                  _RELATIVE if exc.unreadable else exc.hint)
        return False
    if marker not in text:
        what = "certificate" if marker == _PEM_CERT else "private key"
        what_zh = "证书" if marker == _PEM_CERT else "私钥"
        r.problem(key, t(f"{path} holds no PEM {what}", f"{path} 中没有 PEM 格式的{what_zh}"),
                  t("a DER file converts with: openssl x509 -inform der -in FILE -out FILE.pem",
                    "DER 文件可转换：openssl x509 -inform der -in FILE -out FILE.pem"))
        return False
    return True


def _tls_problem(r: Reader, key: str, path: Path, exc: Exception) -> None:
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
    if reason == "KEY_VALUES_MISMATCH":
        r.problem(key, t(f"{path}: the private key does not belong to this certificate",
                         f"{path}：私钥与该证书不匹配"),
                  t("tls_key must be the key the certificate was issued for",
                    "tls_key 必须是签发该证书时使用的私钥"))
        return
    r.problem(key, t(f"{path}: the TLS library does not take it ({reason})",
                     f"{path}：TLS 库无法加载（{reason}）"))

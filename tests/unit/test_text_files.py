"""gateway/text_files.py: one way to read every text file and secret (issue 16), and the files a
site config names, checked when it loads (gateway/config/files.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import ConfigError, load_site
from gateway.text_files import TextFileError, decode_arg, decode_text, read_secret, read_text_file
from tests.support.services import require_binary

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = ROOT / "config" / "examples" / "tailings_pond.toml"
TEXT = "# 库水位 雷达水位计 浸润线埋深\ncode = \"TP-01\"\n"


@pytest.mark.parametrize(("data", "encoding"), [
    (TEXT.encode("utf-8"), "utf-8"),
    (b"\xef\xbb\xbf" + TEXT.encode("utf-8"), "utf-8 with BOM"),
    (TEXT.encode("utf-16"), "utf-16"),
    (TEXT.encode("gbk"), "gb18030"),
    (TEXT.encode("gb18030"), "gb18030"),
])
def test_each_encoding_a_field_engineer_saves_is_read_and_named(data: bytes,
                                                                encoding: str) -> None:
    file = decode_text(data, "site.toml")
    assert file.text.lstrip("\ufeff") == TEXT and file.encoding == encoding
    assert (file.note("en") == "") == (encoding in ("utf-8", "utf-8 with BOM"))


def test_a_damaged_utf8_file_is_named_by_line_and_column_not_guessed_as_gbk() -> None:
    data = bytearray(TEXT.encode("utf-8") + "name = \"库水位\"\n".encode())
    data[data.rindex("位".encode())] = 0xFF  # the first byte of the last character
    with pytest.raises(TextFileError) as info:
        decode_text(bytes(data), "site.toml")
    assert (info.value.line, info.value.column) == (3, 11)
    assert "not valid UTF-8" in info.value.reason.en and "UTF-8" in info.value.reason.zh
    lenient = decode_text(bytes(data), "export.csv", lenient=True)  # a logger export goes on
    assert lenient.encoding.startswith("utf-8 (") and "库水" in lenient.text


def test_a_file_that_is_not_text_and_one_that_is_not_there(tmp_path: Path) -> None:
    with pytest.raises(TextFileError) as info:
        decode_text(b"code = 1\n" + bytes([0x80, 0xFF]) * 4, "site.toml")
    assert info.value.line == 2 and "neither UTF-8 nor GB18030" in info.value.reason.en
    for path, why in ((tmp_path / "nope.toml", "no such file"), (tmp_path, "a folder")):
        with pytest.raises(TextFileError) as info:
            read_text_file(path)
        assert info.value.unreadable and why in info.value.reason.en
        assert "无法读取" in info.value.reason.zh


def test_a_secret_is_one_line_and_is_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cret-token\n")
    assert read_secret(secret) == "s3cret-token"
    for content, why in (("\n \n", "is empty"), ("s3cret\nmore\n", "2 lines"),
                         ("s3\x07cret", "control characters")):
        secret.write_text(content)
        with pytest.raises(TextFileError) as info:
            read_secret(secret)
        assert why in str(info.value) and "s3" not in str(info.value)


def test_a_command_line_value_typed_in_a_gbk_terminal() -> None:
    typed = os.fsdecode("雷达1".encode("gbk"))  # what Python makes of GBK bytes in argv
    assert decode_arg(typed) == "雷达1" and decode_arg("雷达1") == "雷达1"
    with pytest.raises(ValueError):
        decode_arg(os.fsdecode(b"\xff\xff\x80"))


def _site(tmp_path: Path, extra: str) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8").replace('protocol = "5"',
                                                       'protocol = "5"\n' + extra)
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _openssl(tmp: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True)


def test_tls_files_are_checked_when_the_config_loads(tmp_path: Path) -> None:
    require_binary("openssl")
    for name in ("a", "b"):
        _openssl(tmp_path, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN={name}")
    _openssl(tmp_path, "pkey", "-in", "a.key", "-out", "a.enc.key", "-aes256", "-passout",
             "pass:secret")
    good = 'tls_ca = "a.crt"\ntls_cert = "a.crt"\ntls_key = "a.key"'
    assert load_site(_site(tmp_path, good)).mqtt.tls_key == tmp_path / "a.key"
    for extra, key, why in (
            ('tls_ca = "a.key"', "tls_ca", "holds no PEM certificate"),
            ('tls_cert = "a.crt"\ntls_key = "b.key"', "tls_cert", "does not belong"),
            ('tls_cert = "a.crt"\ntls_key = "a.enc.key"', "tls_key", "passphrase"),
            ('tls_key = "a.key"', "tls_key", "without tls_cert"),
            ('password_file = "a.key"', "password_file", "without a username")):
        with pytest.raises(ConfigError) as info:
            load_site(_site(tmp_path, extra))
        (problem,) = [p for p in info.value.problems
                      if p.path == f"uplink.mqtt.{key}" and why in p.message]
        assert problem.message_zh and "BEGIN" not in problem.message, problem


def test_a_config_that_cannot_be_read_is_one_line_not_a_problem_count(tmp_path: Path,
                                                                       capsys) -> None:
    assert main(["config", "validate", str(tmp_path / "nope.toml"), "--lang", "en"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"minewatch: {tmp_path / 'nope.toml'}: cannot read: no such file")
    assert "problem" not in err and ": : " not in err
    assert main(["config", "validate", str(tmp_path / "nope.toml"), "--json"]) == 2
    assert '"problems": []' in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["run", "--config", str(EXAMPLE), "--time-scale", "nan", "--epoch", "0"],
    ["run", "--config", str(EXAMPLE), "--time-scale", "60", "--epoch", "yesterday"],
    ["run", "--config", str(EXAMPLE), "--duration", "inf"],
    ["device", "read", "--bus", "tcp://127.0.0.1:502", "--unit", "999", "--address", "0"],
    ["device", "read", "--bus", "tcp://127.0.0.1:502", "--unit", "1", "--address", "70000"],
    ["device", "read", "--bus", "tcp://127.0.0.1:502", "--unit", "1", "--address", "0",
     "--timeout", "inf"],
    ["replay", "x.csv", "--out", "y.csv", "--tz", "Mars/Olympus"],
])
def test_command_line_values_out_of_range_are_refused_by_name(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --" in err and "Traceback" not in err


def test_a_read_past_the_address_space_is_refused_before_the_line_is_touched(capsys) -> None:
    assert main(["device", "read", "--bus", "tcp://127.0.0.1:1", "--unit", "1", "--address",
                 "65535", "--count", "4"]) == 2
    assert "run past the address space" in capsys.readouterr().err


def test_a_scenario_saved_in_gbk_is_read_and_a_broken_one_is_located(tmp_path: Path) -> None:
    """The simulator reads its files with the gateway's reader (docs/contracts.md)."""
    from firmware_sim.scenario import ScenarioError, load_scenario

    source = ROOT / "firmware_sim" / "scenarios" / "rainstorm.toml"
    text = source.read_text(encoding="utf-8").replace(
        '"../../config/examples/tailings_pond.toml"', json.dumps(str(EXAMPLE)))
    gbk = tmp_path / "暴雨.toml"
    gbk.write_bytes(("# 暴雨：库水位依次超过四级预警\n" + text).encode("gbk"))
    assert load_scenario(gbk).name == "rainstorm"
    broken = tmp_path / "broken.toml"
    broken.write_text(text.replace('duration = "72h"', "duration = 72h"), encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"broken\.toml:\d+:\d+: not valid TOML"):
        load_scenario(broken)


def test_replay_refuses_in_the_chosen_language_and_locates_a_broken_sidecar(
        tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"\n\n")
    assert main(["--lang", "zh", "replay", str(empty), "--out", str(tmp_path / "o.csv")]) == 2
    assert "空文件" in capsys.readouterr().err
    export = tmp_path / "export.csv"
    export.write_text("time,level\n2026-07-20 00:00,1250.1\n2026-07-20 00:10,1250.2\n")
    sidecar = tmp_path / "export.csv.meta.json"
    sidecar.write_text('{"columns": {"level": {"quantity": "water_level"}}\n', encoding="utf-8")
    assert main(["replay", str(export), "--sidecar", str(sidecar), "--out",
                 str(tmp_path / "o.csv"), "--lang", "en"]) == 2
    assert f"{sidecar}:2:1: not JSON" in capsys.readouterr().err

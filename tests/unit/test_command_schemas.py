"""Every command has its request schema, the CLI builds requests the schema takes, and a request
the schema refuses is refused by the command too, before it touches the gateway."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import jsonschema
import pytest

from gateway.cli.entry import build_parser
from gateway.commands.registry import commands
from gateway.commands.request import CommandError, Request

ROOT = Path(__file__).resolve().parent.parent.parent
SCHEMAS = ROOT / "config" / "schema"
ENVELOPE = {"id": "r-1", "ts": 1784476800000}


def _schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"cmd_{name}.schema.json").read_text())


def test_every_command_has_its_schema_and_every_schema_its_command() -> None:
    schemas = {p.name.removeprefix("cmd_").removesuffix(".schema.json")
               for p in SCHEMAS.glob("cmd_*.schema.json")} - {"result"}
    assert schemas == set(commands())
    assert {"ack", "config", "maintenance", "measure", "status", "time"} <= schemas


@pytest.mark.parametrize("argv", [
    ["measure"], ["measure", "--points", "WL-01,JRX-01"], ["measure", "--devices", "radar_wl1"],
    ["ack", "--alert-id", "3f6c", "--by", "张工", "--note", "on my way"],
    ["ack", "--alert-id", "3f6c"],
    ["maintenance", "--points", "JRX-01", "--for", "2h", "--reason", "cable"],
    ["maintenance", "--devices", "vw_logger_a", "--until", "1784480400000", "--reason", "cal"],
    ["maintenance", "--points", "JRX-01", "--end"],
    ["time"], ["status"],
])
def test_the_cli_builds_requests_the_schema_takes(argv: list[str]) -> None:
    ns = build_parser().parse_args(["cmd", *argv, "--config", "site.toml"])
    request = {**ENVELOPE, **commands()[ns.command].request(ns)}
    jsonschema.validate(request, _schema(ns.command))


def test_the_cli_sends_a_config_file_or_a_patch(tmp_path: Path) -> None:
    patch = tmp_path / "p.toml"
    patch.write_text('[[points]]\nname = "WL-01"\nthresholds = { red = 1255.5 }\n')
    for flag, key in (("--patch", "patch"), ("--file", "config")):
        ns = build_parser().parse_args(["cmd", "config", flag, str(patch), "--config", "s.toml",
                                        "--by", "李工"])
        request = {**ENVELOPE, **commands()["config"].request(ns)}
        jsonschema.validate(request, _schema("config"))
        assert request[key] == patch.read_text() and request["by"] == "李工"


BAD = [
    ("measure", {"points": ["WL-01"], "devices": ["radar_wl1"]}),
    ("measure", {"point": ["WL-01"]}),
    ("ack", {"alert_id": "a"}),
    ("ack", {"alert_id": "a", "by": "张工", "colour": "red"}),
    ("ack", {"alert_id": "a", "by": ""}),
    ("config", {"by": "李工"}),
    ("config", {"config": "a = 1", "patch": "b = 2", "by": "李工"}),
    ("maintenance", {"points": ["JRX-01"], "devices": ["x"], "duration": 60, "by": "张工"}),
    ("maintenance", {"points": ["JRX-01"], "by": "张工"}),
    ("maintenance", {"points": ["JRX-01"], "duration": 60, "until": 1, "by": "张工"}),
    ("time", {"verbose": True}),
    ("status", {"all": 1}),
]


@pytest.mark.parametrize(("name", "args"), BAD)
def test_what_the_schema_refuses_the_command_refuses(name: str, args: dict) -> None:
    request = {**ENVELOPE, **args}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(request, _schema(name))
    req = Request(name, f"minewatch/v1/S/G/cmd/{name}", "r-1", ENVELOPE["ts"], request, 0.0)
    with pytest.raises(CommandError) as exc:
        asyncio.run(commands()[name].run(None, req))  # refused before it needs a gateway
    assert exc.value.code == "bad_request"


def test_a_new_command_is_one_module(tmp_path: Path, monkeypatch) -> None:
    """The registry, the service's dispatch and `minewatch cmd` find a handler module by itself
    (issue 19's `reading` plugs in this way)."""
    from gateway.commands import handlers

    (tmp_path / "echo.py").write_text('''
NAME = "echo"
SUMMARY = "answer with the arguments"
EXAMPLES = "minewatch cmd echo --config site.toml --text hi"


def add_arguments(p):
    p.add_argument("--text", default="")


def request(ns):
    return {"text": ns.text}


async def run(gw, req):
    return dict(req.args)


def show(result, lang):
    return result["text"]
''')
    monkeypatch.setattr(handlers, "__path__", [*handlers.__path__, str(tmp_path)])
    commands.cache_clear()
    try:
        echo = commands()["echo"]
        ns = build_parser().parse_args(["cmd", "echo", "--text", "hi", "--config", "s.toml"])
        req = Request("echo", "t/cmd/echo", "r-1", 1, {**ENVELOPE, **echo.request(ns)}, 0.0)
        assert asyncio.run(echo.run(None, req)) == {"text": "hi"}
    finally:
        commands.cache_clear()

"""One way for each job: the gateway talks Modbus through gateway/modbus/client.py alone and makes
its MQTT clients in gateway/uplink/client.py alone, so the field engineer's commands (`device
test`, `read`, `scan`, `write`, `alerts test`) behave exactly as the daemon does; the CLI modules
parse, call those parts and print, with no Modbus, MQTT or TLS code of their own."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
GATEWAY = ROOT / "gateway"
PYMODBUS_CLIENTS = {"AsyncModbusTcpClient", "AsyncModbusSerialClient", "AsyncModbusUdpClient",
                    "AsyncModbusTlsClient", "ModbusTcpClient", "ModbusSerialClient",
                    "ModbusUdpClient", "ModbusTlsClient"}


def imported_names(path: Path) -> set[str]:
    """Every module and name `path` imports (`a.b` and `a.b.c` for `from a.b import c`)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
            out.update(a.name for a in node.names)
    return out


def modules() -> list[Path]:
    return sorted(p for p in GATEWAY.rglob("*.py") if "__pycache__" not in p.parts)


def test_only_the_modbus_client_module_makes_a_pymodbus_client() -> None:
    makers = [p.relative_to(ROOT).as_posix() for p in modules()
              if imported_names(p) & PYMODBUS_CLIENTS]
    assert makers == ["gateway/modbus/client.py"]


def test_only_the_uplink_client_module_makes_a_paho_client() -> None:
    makers = [p.relative_to(ROOT).as_posix() for p in modules()
              if "paho.mqtt.client.Client" in imported_names(p)]
    assert makers == ["gateway/uplink/client.py"]


def test_the_cli_holds_no_modbus_mqtt_or_tls_code() -> None:
    for path in sorted((GATEWAY / "cli").glob("*.py")):
        names = imported_names(path)
        own = sorted(n for n in names if n.split(".")[0] in ("pymodbus", "paho", "ssl", "serial")
                     or n.startswith("gateway.modbus.replies"))
        assert not own, (path.name, own)


def test_detection_reads_the_parameter_schema_not_the_loader() -> None:
    names = imported_names(GATEWAY / "detect.py")
    assert "gateway.config.detector_params" in names
    assert not [n for n in names if n.startswith("gateway.config.load")]

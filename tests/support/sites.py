"""Site configs for tests: the shipped examples, pointed at the ports and folders of one test."""

from __future__ import annotations

from pathlib import Path

from firmware_sim.demo import site_for_ports

ROOT = Path(__file__).resolve().parent.parent.parent


def example_site(tmp: Path, name: str = "tailings_pond", *, modbus_port: int, mqtt_port: int,
                 replace: dict[str, str] | None = None, listen: str = "off") -> Path:
    """Copy `config/examples/<name>.toml` with the test's ports and a private state folder."""
    return site_for_ports(ROOT / "config" / "examples" / f"{name}.toml", tmp,
                          modbus_port=modbus_port, mqtt_port=mqtt_port, replace=replace,
                          listen=listen)

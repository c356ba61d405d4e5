"""Device profiles: the register maps of sensor models, loaded from `config/profiles/*.toml`.

A profile is the one source of truth for how a sensor model speaks Modbus: the gateway reads with
it and `firmware_sim` serves it, so a map error shows up in tests instead of on site. This module is
the only part of `gateway/` that `firmware_sim` may import, so it depends on nothing else here.

Addresses in a profile are written as the vendor's manual prints them; `address_base` says whether
the manual counts from 0 or from 1, and `Register.wire_address` is what goes on the wire. A 1-based
manual often prints the Modicon table prefix too (40001 = the first holding register, 30001 the
first input register, 10001 the first discrete input; 6 digits, 400001, above 9999): with
`address_base = 1` an address of 10000 or more is read that way, and a prefix that does not match
the register's table is an error, since that is how an off-by-a-table map shows up. Word order uses the common letters: ABCD (big-endian words and bytes), CDAB (word swap),
BADC (byte swap inside each word), DCBA (both); 64-bit values generalise the same two swaps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from gateway.i18n import Text, t
from gateway.text_files import TextFileError
from gateway.toml_text import read_toml

__all__ = [
    "TABLES",
    "TYPES",
    "WORD_ORDERS",
    "ProfileError",
    "Register",
    "SerialDefaults",
    "DeviceProfile",
    "load_profile",
    "find_profile",
    "default_profile_dirs",
]

TABLES = ("holding", "input", "coil", "discrete")
# data type -> number of 16-bit registers (bits and coils take one "slot" each)
TYPES: dict[str, int] = {
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "float32": 2,
    "int64": 4,
    "uint64": 4,
    "float64": 4,
    "bit": 1,  # one bit of a register (`bit` index) or one coil / discrete input
    "string": 0,  # length from `length` (registers)
}
WORD_ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")
PARITIES = ("N", "E", "O")


class ProfileError(ValueError):
    """A profile file is malformed; the message names the file and the key, `text` says it in
    both languages."""

    def __init__(self, text: Text | str):
        self.text = text if isinstance(text, Text) else Text(text, text)
        super().__init__(self.text.en)


@dataclass(frozen=True)
class SerialDefaults:
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8


@dataclass(frozen=True)
class Register:
    """One value a device exposes: where it lives and how its raw words become a number."""

    name: str
    table: str
    address: int  # as the manual prints it
    wire_address: int  # as it goes on the wire (0-based)
    type: str
    count: int  # registers (or bits for coil/discrete tables)
    word_order: str
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    quantity: str = ""
    bit: int | None = None
    decimals_register: str | None = None  # name of a register holding a power-of-ten divisor
    valid_min: float | None = None  # the sensor's measuring range; outside is out_of_range
    valid_max: float | None = None
    role: str = "value"  # value | status | fault | config
    description: str = ""


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    model: str
    path: Path
    address_base: int
    max_read: int
    update_period: float
    word_order: str
    default_unit: int
    serial: SerialDefaults
    registers: tuple[Register, ...]
    measure_delay: float = 0.0  # seconds a read takes when it triggers a measurement
    description: str = ""
    _by_name: dict[str, Register] = field(default_factory=dict, compare=False, repr=False)

    def register(self, name: str) -> Register:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(
                f"profile {self.name!r} ({self.path}) has no register {name!r}; "
                f"it has: {', '.join(r.name for r in self.registers)}"
            ) from None


def default_profile_dirs() -> list[Path]:
    """The repository's profile library (next to the packages in a source checkout)."""
    return [Path(__file__).resolve().parent.parent / "config" / "profiles"]


def find_profile(name: str, search: list[Path] | None = None) -> Path:
    dirs = list(search or []) + default_profile_dirs()
    for d in dirs:
        p = Path(d) / f"{name}.toml"
        if p.is_file():
            return p
    where = ", ".join(str(d) for d in dirs)
    raise ProfileError(t(f"device profile {name!r} not found in: {where}",
                         f"找不到设备型号文件 {name!r}，已查找：{where}"))


def _need(table: dict, key: str, where: str, kind: type | tuple[type, ...]):
    if key not in table:
        raise ProfileError(t(f"{where}: missing key '{key}'", f"{where}：缺少键 '{key}'"))
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ProfileError(t(f"{where}.{key}: expected {_kind_name(kind)}, got {value!r}",
                             f"{where}.{key}：应为 {_kind_name(kind)}，实际为 {value!r}"))
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        raise ProfileError(t(f"{where}.{key}: a {len(str(abs(value)))}-digit integer is too "
                             "large", f"{where}.{key}：{len(str(abs(value)))} 位的整数过大"))
    if isinstance(value, float) and not math.isfinite(value):
        raise ProfileError(t(f"{where}.{key}: must be a finite number, got {value!r}",
                             f"{where}.{key}：必须是有限的数，实际为 {value!r}"))
    return value


def _opt(table: dict, key: str, where: str, kind: type | tuple[type, ...], default):
    if key not in table:
        return default
    return _need(table, key, where, kind)


def _kind_name(kind) -> str:
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return kind.__name__


_PROFILE_KEYS = {
    "name", "model", "description", "address_base", "max_read", "update_period", "word_order",
    "default_unit", "serial", "measure_delay", "registers",
}
_REGISTER_KEYS = {
    "name", "table", "address", "type", "length", "word_order", "scale", "offset", "unit",
    "quantity", "bit", "decimals_register", "valid_min", "valid_max", "role", "description",
}


def load_profile(path: str | Path) -> DeviceProfile:
    """Load and check one profile file; every error names the file and the key path."""
    path = Path(path)
    try:
        doc, _ = read_toml(path)
    except TextFileError as exc:
        raise ProfileError(t(f"device profile {exc.render('en')}",
                             f"设备型号文件 {exc.render('zh')}")) from None
    where = f"{path}"
    unknown = set(doc) - _PROFILE_KEYS
    if unknown:
        raise ProfileError(t(f"{where}: unknown key(s) {sorted(unknown)}",
                             f"{where}：未知的键 {sorted(unknown)}"))
    name = _need(doc, "name", where, str)
    base = _opt(doc, "address_base", where, int, 0)
    if base not in (0, 1):
        raise ProfileError(t(f"{where}.address_base: must be 0 or 1, got {base}",
                             f"{where}.address_base：只能是 0 或 1，实际为 {base}"))
    max_read = _opt(doc, "max_read", where, int, 125)
    if not 1 <= max_read <= 125:
        raise ProfileError(t(f"{where}.max_read: must be 1..125, got {max_read}",
                             f"{where}.max_read：允许范围 1..125，实际为 {max_read}"))
    word_order = _opt(doc, "word_order", where, str, "ABCD")
    if word_order not in WORD_ORDERS:
        raise ProfileError(t(f"{where}.word_order: one of {WORD_ORDERS}, got {word_order!r}",
                             f"{where}.word_order：应为 {WORD_ORDERS} 之一，实际为 {word_order!r}"))
    serial_doc = _opt(doc, "serial", where, dict, {})
    serial = SerialDefaults(
        baudrate=_opt(serial_doc, "baudrate", f"{where}.serial", int, 9600),
        parity=_opt(serial_doc, "parity", f"{where}.serial", str, "N"),
        stopbits=_opt(serial_doc, "stopbits", f"{where}.serial", int, 1),
        bytesize=_opt(serial_doc, "bytesize", f"{where}.serial", int, 8),
    )
    if serial.parity not in PARITIES:
        raise ProfileError(t(f"{where}.serial.parity: one of {PARITIES}, got {serial.parity!r}",
                             f"{where}.serial.parity：应为 {PARITIES} 之一，实际为 "
                             f"{serial.parity!r}"))
    default_unit = _opt(doc, "default_unit", where, int, 1)
    if not 1 <= default_unit <= 247:
        raise ProfileError(t(f"{where}.default_unit: unit id {default_unit} out of range 1..247",
                             f"{where}.default_unit：站号 {default_unit} 超出范围 1..247"))
    update_period = float(_opt(doc, "update_period", where, (int, float), 1.0))
    measure_delay = float(_opt(doc, "measure_delay", where, (int, float), 0.0))
    for key, value, hi in (("update_period", update_period, 7 * 86400.0),
                           ("measure_delay", measure_delay, 60.0)):
        if not 0 <= value <= hi:
            raise ProfileError(t(f"{where}.{key}: {value:g} s is out of range: allowed 0 to "
                                 f"{hi:g} s", f"{where}.{key}：{value:g} 秒超出允许范围 0 至 "
                                 f"{hi:g} 秒"))
    regs: list[Register] = []
    seen: set[str] = set()
    for i, r in enumerate(_need(doc, "registers", where, list)):
        rw = f"{where}.registers[{i}]"
        if not isinstance(r, dict):
            raise ProfileError(t(f"{rw}: expected a table", f"{rw}：应为表（table）"))
        unknown = set(r) - _REGISTER_KEYS
        if unknown:
            raise ProfileError(t(f"{rw}: unknown key(s) {sorted(unknown)}",
                                 f"{rw}：未知的键 {sorted(unknown)}"))
        rname = _need(r, "name", rw, str)
        rw = f"{where}.registers[{i}] ({rname})"
        if rname in seen:
            raise ProfileError(t(f"{rw}.name: duplicate register name", f"{rw}.name：寄存器名重复"))
        seen.add(rname)
        table = _opt(r, "table", rw, str, "holding")
        if table not in TABLES:
            raise ProfileError(t(f"{rw}.table: one of {TABLES}, got {table!r}",
                                 f"{rw}.table：应为 {TABLES} 之一，实际为 {table!r}"))
        rtype = _need(r, "type", rw, str)
        if rtype not in TYPES:
            raise ProfileError(t(f"{rw}.type: one of {sorted(TYPES)}, got {rtype!r}",
                                 f"{rw}.type：应为 {sorted(TYPES)} 之一，实际为 {rtype!r}"))
        address = _need(r, "address", rw, int)
        wire = (_modicon(address, table, rw) if base == 1 and address >= 10000 else address) - base
        if wire < 0 or wire > 0xFFFF:
            top = 0xFFFF + base
            raise ProfileError(t(
                f"{rw}.address: {address} is outside the device's address space "
                f"(address_base {base}: {base} to {top}, or a Modicon address)",
                f"{rw}.address：{address} 超出设备的地址空间（address_base {base}：{base} 至 "
                f"{top}，或 Modicon 地址）"))
        count = _need(r, "length", rw, int) if rtype == "string" else TYPES[rtype]
        if not 1 <= count <= 125 or wire + count - 1 > 0xFFFF:
            raise ProfileError(t(f"{rw}.length: {count} registers from {address} do not fit "
                                 "one read (1 to 125, within the address space)",
                                 f"{rw}.length：从 {address} 开始的 {count} 个寄存器无法一次读取"
                                 "（1 至 125 个，且在地址空间内）"))
        if table in ("coil", "discrete") and rtype != "bit":
            raise ProfileError(t(f"{rw}.type: {table} tables hold bits; use type 'bit'",
                                 f"{rw}.type：{table} 表存放的是位，请用 type = 'bit'"))
        bit = _opt(r, "bit", rw, int, None)
        if rtype == "bit" and table in ("holding", "input") and (bit is None or not 0 <= bit <= 15):
            raise ProfileError(t(f"{rw}.bit: a bit field of a register needs bit = 0..15",
                                 f"{rw}.bit：寄存器中的位字段需要 bit = 0..15"))
        order = _opt(r, "word_order", rw, str, word_order)
        if order not in WORD_ORDERS:
            raise ProfileError(t(f"{rw}.word_order: one of {WORD_ORDERS}, got {order!r}",
                                 f"{rw}.word_order：应为 {WORD_ORDERS} 之一，实际为 {order!r}"))
        scale = float(_opt(r, "scale", rw, (int, float), 1.0))
        if scale == 0:
            raise ProfileError(t(f"{rw}.scale: 0 makes every reading the offset",
                                 f"{rw}.scale：为 0 时所有读数都等于 offset"))
        valid_min = _opt(r, "valid_min", rw, (int, float), None)
        valid_max = _opt(r, "valid_max", rw, (int, float), None)
        if valid_min is not None and valid_max is not None and valid_min >= valid_max:
            raise ProfileError(t(f"{rw}.valid_min: {valid_min} is not below valid_max "
                                 f"{valid_max}", f"{rw}.valid_min：{valid_min} 不小于 valid_max "
                                 f"{valid_max}"))
        regs.append(
            Register(
                name=rname,
                table=table,
                address=address,
                wire_address=wire,
                type=rtype,
                count=count,
                word_order=order,
                scale=scale,
                offset=float(_opt(r, "offset", rw, (int, float), 0.0)),
                unit=_opt(r, "unit", rw, str, ""),
                quantity=_opt(r, "quantity", rw, str, ""),
                bit=bit,
                decimals_register=_opt(r, "decimals_register", rw, str, None),
                valid_min=valid_min,
                valid_max=valid_max,
                role=_opt(r, "role", rw, str, "value"),
                description=_opt(r, "description", rw, str, ""),
            )
        )
    by_name = {r.name: r for r in regs}
    for r in regs:
        if r.decimals_register and r.decimals_register not in by_name:
            raise ProfileError(t(
                f"{where}: register {r.name!r} names decimals_register "
                f"{r.decimals_register!r}, which the profile does not define",
                f"{where}：寄存器 {r.name!r} 引用的 decimals_register {r.decimals_register!r} "
                "在该型号文件中没有定义"))
    return DeviceProfile(
        name=name,
        model=_opt(doc, "model", where, str, name),
        path=path,
        address_base=base,
        max_read=max_read,
        update_period=update_period,
        word_order=word_order,
        default_unit=default_unit,
        serial=serial,
        registers=tuple(regs),
        measure_delay=measure_delay,
        description=_opt(doc, "description", where, str, ""),
        _by_name=by_name,
    )


_MODICON_PREFIX = {"coil": 0, "discrete": 1, "input": 3, "holding": 4}


def _modicon(address: int, table: str, where: str) -> int:
    """The 1-based register number of a Modicon-style address (40001 -> 1, 400001 -> 1)."""
    digits = 6 if address >= 100000 else 5
    prefix, number = divmod(address, 10 ** (digits - 1))
    if prefix != _MODICON_PREFIX[table] or number == 0:
        tables = {v: k for k, v in _MODICON_PREFIX.items()}
        raise ProfileError(t(
            f"{where}.address: {address} reads as a Modicon {tables.get(prefix, '?')} address "
            f"({prefix}xxxx), but the register's table is {table}; write the number as the "
            f"manual prints it, in the table it names",
            f"{where}.address：{address} 按 Modicon 地址读作 {tables.get(prefix, '?')} 表"
            f"（{prefix}xxxx），但该寄存器的表是 {table}；请按说明书所印的地址和表填写"))
    return number

"""The CLI's words for people, in Chinese and English: table headers, results and refusals.

Only what a person reads goes through here; JSON keys, log events and MQTT payloads stay English
(the event's own bilingual `message` is the alert engine's). The language is `--lang`, else
Chinese when the locale (LC_ALL, then LC_MESSAGES, then LANG, as POSIX orders them) starts with
`zh`, else English.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

__all__ = ["LANGS", "MESSAGES", "Text", "default_lang", "detector_problem_zh", "exception_name",
           "t", "tr"]

LANGS = ("zh", "en")


@dataclass(frozen=True)
class Text:
    """One message in both languages, written where it is raised (the config loader's problems,
    the file reader's errors): the Chinese stays next to the English it translates."""

    en: str
    zh: str

    def __str__(self) -> str:
        return self.en

    def in_lang(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


def t(en: str, zh: str) -> Text:
    """`Text(en, zh)`, short for the many places that write one."""
    return Text(en, zh)

MESSAGES: dict[str, tuple[str, str]] = {
    # key: (English, Chinese); str.format fields are the same in both
    # --- config
    "valid": ("{file}: OK — site {site}, gateway {gateway}, {buses} bus(es), {devices} device(s), "
              "{points} point(s)",
              "{file}：配置有效 — 站点 {site}，网关 {gateway}，{buses} 条总线，{devices} 台设备，"
              "{points} 个测点"),
    "init_exists": ("{file} exists; not overwritten (add --force to replace it)",
                    "{file} 已存在，未覆盖（确需覆盖请加 --force）"),
    "init_wrote": ("wrote {file} from template {template}; next: edit the buses, units and "
                   "thresholds, then\n  minewatch config validate {file}",
                   "已按模板 {template} 生成 {file}；下一步：修改总线、站号和预警阈值，然后\n"
                   "  minewatch config validate {file}"),
    "init_invalid": ("template {template} does not validate where it was written:",
                     "模板 {template} 写到该位置后校验未通过："),
    # --- shared device words
    "h_unit": ("unit", "站号"),
    "h_line": ("line", "串口参数"),
    "h_answer": ("answer", "应答"),
    "h_latency": ("ms", "毫秒"),
    "h_address": ("address", "地址"),
    "h_raw": ("raw", "原始值"),
    "h_point": ("point", "测点"),
    "h_quantity": ("quantity", "监测量"),
    "h_value": ("value", "数值"),
    "h_quality": ("quality", "质量"),
    "h_decoded": ("type order", "类型 字节序"),
    "answer_data": ("registers {words}", "寄存器 {words}"),
    "answer_exception": ("exception {code} ({name})", "异常码 {code}（{name}）"),
    "exc_reply": ("unit {unit} answered exception {code} ({name}) to {what}",
                  "站号 {unit} 对 {what} 返回异常码 {code}（{name}）"),
    "no_answer": ("unit {unit} does not answer ({detail})", "站号 {unit} 无应答（{detail}）"),
    "malformed_reply": ("unit {unit} answers with a malformed reply: {detail}",
                        "站号 {unit} 的应答格式错误：{detail}"),
    "cannot_connect": ("cannot connect to {where}", "无法连接 {where}"),
    "cannot_open": ("cannot open {port} at {line}: {error}", "无法以 {line} 打开 {port}：{error}"),
    "port_busy": ("serial port {port} is in use by {holder} (lock {lock}); stop it first "
                  "(for the daemon: systemctl stop minewatch) or wait",
                  "串口 {port} 正被 {holder} 占用（锁文件 {lock}）；请先停止它"
                  "（守护进程：systemctl stop minewatch）或稍后再试"),
    "unknown_device": ("no device {device!r} in {file}; it has: {known}",
                       "{file} 中没有设备 {device!r}；已有：{known}"),
    # --- scan
    "scan_start": ("scanning {where}: units {units}, {settings} line setting(s), {timeout:g} s "
                   "per probe ({table} register {address})",
                   "正在扫描 {where}：站号 {units}，{settings} 种串口参数，每次探测 {timeout:g} 秒"
                   "（{table} 寄存器 {address}）"),
    "scan_found": ("{n} device(s) answered", "共 {n} 台设备应答"),
    "scan_none": ("no device answered; check wiring (A/B swapped?), termination, the unit range "
                  "and the line settings",
                  "没有设备应答；请检查接线（A/B 是否接反）、终端电阻、站号范围和串口参数"),
    "scan_noise": ("garbled replies at {line}: a device talks on this line at other settings",
                   "{line} 下收到乱码：线上有设备，但串口参数不同"),
    "scan_mixed": ("devices answer at different line settings: one bus needs one setting for all",
                   "设备的串口参数不一致：同一条总线上的设备必须使用相同的参数"),
    "scan_same_unit": ("unit {unit} answers at several settings: two devices share a unit id, "
                       "or the port echoes", "站号 {unit} 在多种参数下都有应答：可能有两台设备"
                       "站号相同"),
    "ans_gateway": ("gateway exception {code} ({name}): the converter answered, not a device",
                    "网关异常 {code}（{name}）：应答来自转换器而不是设备"),
    # --- write
    "write_plan": ("about to write unit {unit} {table} register {address} (wire address "
                   "{wire}): {value} as {type} {order} = {words}",
                   "将写入站号 {unit} 的 {table} 寄存器 {address}（报文地址 {wire}）："
                   "{value}，类型 {type} {order} = {words}"),
    "write_current": ("now it holds {words} ({value})", "当前值 {words}（{value}）"),
    "write_current_failed": ("reading the current value failed: {error}", "读取当前值失败：{error}"),
    "write_prompt": ("type 'yes' to write: ", "输入 yes 确认写入："),
    "write_refused_tty": ("not written: confirm with --yes (stdin is not a terminal, so there is "
                          "nobody to ask)", "未写入：请加 --yes 确认（标准输入不是终端，无法询问）"),
    "write_cancelled": ("not written", "已取消，未写入"),
    "write_ok": ("written and read back: unit {unit} register {address} = {words} ({value})",
                 "已写入并回读确认：站号 {unit} 寄存器 {address} = {words}（{value}）"),
    "write_acked": ("written (the device acknowledged); not read back (--no-verify)",
                    "已写入（设备已确认），未回读（--no-verify）"),
    "write_mismatch": ("written, but read back {got} instead of {want}: the device may take "
                       "the value only after a restart, or rounds or rejects it",
                       "已写入，但回读为 {got} 而不是 {want}：设备可能需重启后生效，或对该值"
                       "取整/拒绝"),
    "write_readback_failed": ("written (acknowledged), but reading back failed: {error}; if you "
                              "changed the unit id or baud rate, scan again with the new settings",
                              "已写入（设备已确认），但回读失败：{error}；若修改了站号或波特率，"
                              "请用新参数重新扫描"),
    "write_failed": ("not written: {error}", "写入失败：{error}"),
    "write_hint_fc": ("the register is read-only, or the device takes writes only with FC16 "
                      "(try --fc16) or after an unlock register: see the manual",
                      "该寄存器只读，或设备只接受 FC16 写入（试试 --fc16），或需先写解锁寄存器："
                      "请查阅说明书"),
    "bad_value": ("--value {value!r} does not fit {type}", "--value {value!r} 超出 {type} 的范围"),
    # --- device test
    "test_head": ("{device}: unit {unit} on bus {bus}, profile {profile}",
                  "{device}：站号 {unit}，总线 {bus}，设备型号 {profile}"),
    # --- alerts test
    "alert_test": ("test alert {event_id} to {broker}: connect {connect}, PUBACK {puback} "
                   "(reason code {reason}) -> {verdict}",
                   "测试预警 {event_id} 发往 {broker}：连接 {connect}，PUBACK {puback}"
                   "（原因码 {reason}）-> {verdict}"),
    "delivered": ("OK", "已送达"),
    "not_delivered": ("NOT DELIVERED", "未送达"),
    "broker_unreachable": ("cannot reach the broker {broker}: {error}",
                           "无法连接 MQTT 服务器 {broker}：{error}"),
    "no_mqtt": ("{file} has no [uplink.mqtt]", "{file} 没有 [uplink.mqtt] 配置"),
    "no_target": ("{file} has no uplink target {target!r} (its targets: {known})",
                  "{file} 没有名为 {target!r} 的上行目标（已有：{known}）"),
    # --- status
    "daemon_unreachable": ("the daemon does not answer at {url}: {error}",
                           "守护进程在 {url} 无响应：{error}"),
    "status_refused": ("the daemon at {url} refused the request (401): the token in {file} is "
                       "not the one the daemon was started with",
                       "{url} 的守护进程拒绝了请求（401）：{file} 中的令牌与守护进程启动时的不一致"),
    "token_unreadable": ("cannot read the status token file {file}: {error}",
                         "无法读取状态令牌文件 {file}：{error}"),
    "listen_off": ("{file}: [gateway] listen is off, so the daemon has no status endpoint",
                   "{file}：[gateway] listen 为 off，守护进程没有状态接口"),
    "st_site": ("site", "站点"),
    "st_gateway": ("gateway", "网关"),
    "st_uptime": ("uptime", "运行"),
    "st_online": ("devices online", "设备在线"),
    "st_errors": ("failed requests", "失败请求"),
    "st_outbox": ("outbox: {events} events, {telemetry} telemetry",
                  "待发送：{events} 条事件，{telemetry} 条遥测"),
    "st_unconfirmed": ("{n} sent, waiting for the platform's receipt (oldest {age})",
                       "{n} 条已发送、待平台回执（最早 {age}）"),
    "st_uplink": ("uplink {name} ({broker}): {state}, waiting {events} events, {telemetry} "
                  "telemetry; {in_flight} in flight",
                  "上行 {name}（{broker}）：{state}，待发送 {events} 条事件、{telemetry} 条遥测；"
                  "{in_flight} 条在途"),
    "st_connected": ("connected", "已连接"),
    "st_disconnected": ("DISCONNECTED", "未连接"),
    "st_storage": ("STATE DIRECTORY {path} {state}: {reason}; {held} events held in memory",
                   "状态目录 {path} {state}：{reason}；内存暂存 {held} 条事件"),
    "st_on": ("online", "在线"),
    "st_off": ("OFFLINE", "离线"),
    "st_rate": ("online rate", "在线率"),
    "st_polls": ("polls", "轮询"),
    "st_missed": ("missed", "超期"),
    "st_no_alerts": ("no active alerts or faults", "无活动预警或故障"),
    "st_acked": ("acknowledged", "已确认"),
    "st_maintenance": ("maintenance: {subject} until {until} ({by}: {reason})",
                       "维护中：{subject} 至 {until}（{by}：{reason}）"),
    # --- cmd
    "cmd_no_answer": ("no answer to {command} {id} within {timeout:g} s (broker {broker}, "
                      "connect {connect}): is the gateway running with [commands] enabled?",
                      "{timeout:g} 秒内未收到 {command} {id} 的应答（MQTT 服务器 {broker}，连接 "
                      "{connect}）：网关是否在运行、[commands] 是否已启用？"),
    "cmd_refused": ("{command} refused: {code}: {message}", "{command} 被拒绝：{code}：{message}"),
    "cmd_needs_private": ("{file} is an Ed25519 public key: signing needs the platform's private "
                          "key (--key)", "{file} 是 Ed25519 公钥：签名需要平台私钥（--key）"),
    # --- alerts list
    "no_alert_log": ("no alert log yet at {path}", "{path} 尚无预警记录"),
    "delivered_col": ("delivered", "已送达"),
    "pending_col": ("PENDING", "待发送"),
    # --- plan / replay
    "plan_line": ("{device} (unit {unit} on {bus}, profile {profile}, max_read {max_read}, "
                  "max_gap {max_gap}): {n} request(s) per poll, {naive} with one request per "
                  "register",
                  "{device}（站号 {unit}，总线 {bus}，型号 {profile}，max_read {max_read}，"
                  "max_gap {max_gap}）：每次轮询 {n} 个请求，逐个寄存器读取则需 {naive} 个"),
    "replay_done": ("{rows} rows x {channels} channels replayed: {events} event(s), highest grade "
                    "{grade}; wrote {out}",
                    "已回放 {rows} 行 x {channels} 个通道：{events} 条事件，最高等级 {grade}；"
                    "输出 {out}"),
}

_EXCEPTIONS: dict[int, tuple[str, str]] = {
    1: ("illegal function", "非法功能码"),
    2: ("illegal data address", "非法数据地址"),
    3: ("illegal data value", "非法数据值"),
    4: ("slave device failure", "从站设备故障"),
    5: ("acknowledge", "已接受，处理中"),
    6: ("slave device busy", "从站设备忙"),
    8: ("memory parity error", "存储奇偶校验错误"),
    10: ("gateway path unavailable", "网关路径不可用"),
    11: ("gateway target device failed to respond", "网关目标设备无响应"),
}


def default_lang(environ: dict[str, str] | None = None) -> str:
    """zh when the locale says Chinese, else en."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:  # the first one set decides, as for gettext
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def tr(lang: str, key: str, **fields: object) -> str:
    """The message `key` in `lang`, formatted with `fields`."""
    en, zh = MESSAGES[key]
    return (zh if lang == "zh" else en).format(**fields)


def exception_name(code: int, lang: str = "en") -> str:
    """The Modbus exception's name, e.g. 2 -> illegal data address."""
    en, zh = _EXCEPTIONS.get(code, ("unknown exception", "未知异常"))
    return zh if lang == "zh" else en


# The detectors' own parameter checks (detectors/*.py `validate`) speak English and are shared
# with replay and the benchmarks; a site config's problem quotes them, so here they are in
# Chinese, phrase by phrase (first match wins; tests/unit/test_i18n.py reaches each one).
_DETECTOR_PHRASES: list[tuple[str, str]] = [
    (r"^(\w+): a level is infinite$", r"\1：有一个级别为无穷大"),
    (r"^(\w+): levels must not descend from blue to red$", r"\1：级别从蓝色到红色不能递减"),
    (r"^(\w+): levels must not descend$", r"\1：级别不能递减"),
    (r"^(\w+): each set level needs a finite restore level below it$",
     r"\1：每个已设置的级别都需要在它下方的有限恢复值"),
    (r"^(\w+): restore level of an unset level$", r"\1：给出了未设置级别的恢复值"),
    (r"^(\w+): factors must be > 0$", r"\1：系数必须 > 0"),
    (r"^(\w+): factors must ascend$", r"\1：系数必须递增"),
    (r"^(\w+): levels must be > 0 \(NaN = unused\)$", r"\1：级别必须 > 0（NaN 表示不用）"),
    (r"^(\w+) must be finite and (>=?) (\S+)$", r"\1 必须是有限的数且 \2 \3"),
    (r"^(\w+) (\S+) must be >= 1$", r"\1 = \2，必须 >= 1"),
    (r"^(\w+) (\S+) must be a finite number of seconds >= 0$",
     r"\1 = \2，必须是 >= 0 的有限秒数"),
    (r"^jump_z must be > 0 \(inf: no jump checks\)$", r"jump_z 必须 > 0（inf 表示不做跳变检查）"),
    (r"^(\w+) must be >= (\d+) samples$", r"\1 必须 >= \2 个样本"),
    (r"^(\w+) must be >= 0 seconds \(inf: never stuck\)$",
     r"\1 必须 >= 0 秒（inf 表示永不判为卡滞）"),
    (r"^(\w+) must be (>=|>) (\S+) or NaN \(learn\)$", r"\1 必须 \2 \3，或为 NaN（自学习）"),
    (r"^(\w+) must be (>=|>) (\S+) or NaN$", r"\1 必须 \2 \3，或为 NaN"),
    (r"^(\w+) must be (>=|>) (\S+)$", r"\1 必须 \2 \3"),
    (r"^(\w+) must be in ([\[(].*)$", r"\1 必须在 \2 之内"),
    (r"^(\w+) must be (-?\d+)\.\.(-?\d+)$", r"\1 必须在 \2..\3 之间"),
    (r"^(\w+) must be 1, -1 or 2$", r"\1 必须是 1、-1 或 2"),
    (r"^(\w+) must be finite$", r"\1 必须是有限的数"),
    (r"^a learned v_ref needs v_floor > 0$", "自学习的 v_ref 需要 v_floor > 0"),
    (r"^(\w+) (.+) does not fit its (\w+) parameter$", r"\1 = \2 超出其 \3 参数的范围"),
    (r"^angles must lie between 45 \(steady creep\) and 90 degrees$",
     "angles 必须在 45 度（稳定蠕变）到 90 度之间"),
    (r"^plausible range must be a finite min <= max \(NaN = no limit\)$",
     "合理范围必须是有限的 min <= max（NaN 表示不限）"),
]


def detector_problem_zh(message: str) -> str:
    """A detector's parameter problem (its `validate` message, without "channel N: ") in
    Chinese; an unknown one is quoted after a Chinese lead-in rather than lost."""
    for pattern, zh in _DETECTOR_PHRASES:
        if re.match(pattern, message):
            return re.sub(pattern, zh, message)
    return f"检测器参数无效：{message}"

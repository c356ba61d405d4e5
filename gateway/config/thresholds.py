"""The `thresholds` table of a point: its direction (upper, lower or both), the four warning
levels of each side in order, their restore levels (given, or a deadband of a few percent that
never crosses a lower level), and the debounce settings of raising and clearing.

No value switches a level off. A level the file does not name does not exist (that is the one
way to say "no such level"); a level it names is a finite number a reading of the quantity can
reach: inside what the quantity can physically be (`quantities.SPANS`, in its standard unit)
and inside the point's plausible range, since an implausible reading is a fault, never graded.
`nan`, `inf` and numbers too large for a float (TOML reads `1e400` as infinity) are refused,
as are debounce settings that would hold a real crossing back for more than a day."""

from __future__ import annotations

import math
from typing import Any

from gateway.config.model import LEVELS, LevelSet, Thresholds
from gateway.config.reader import INT_LIMIT, Reader
from gateway.i18n import t

__all__ = ["build_thresholds", "RAISE_SAMPLES_MAX", "RAISE_HOLD_MAX"]

_THRESHOLD_KEYS = {"direction", *LEVELS, "restore", "deadband", "debounce", "hold",
                   "clear_samples", "clear_hold", "red_immediate", "upper", "lower"}
_COLOURS_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}
# the longest a crossing may wait to be raised: more samples or time than this and a real
# crossing passes unreported (at a 10-minute period, 100 samples are 16 hours)
RAISE_SAMPLES_MAX = 100
RAISE_HOLD_MAX = 86400.0


def _level(t_doc: dict, key: str, path: str, r: Reader, span: tuple[float, float],
           plausible: tuple[float | None, float | None], what: str = "threshold") -> float | None:
    """One level (or restore level) from the file: None when absent or refused."""
    if key not in t_doc:
        return None
    raw: Any = t_doc[key]
    full = f"{path}.{key}"
    what_zh = "阈值" if what == "threshold" else "恢复值"
    if isinstance(raw, float) and math.isnan(raw):
        r.problem(full, t(f"nan is not a {what}", f"nan 不是有效的{what_zh}"),
                  t("leave the key out for no such level: a level the file does not name does "
                    "not exist", "不设该级别时请删去这个键：文件中没有写的级别即不存在"))
        return None
    allowed = t(f"allowed {span[0]:g} to {span[1]:g}; leave the key out for no such level",
                f"允许范围 {span[0]:g} 至 {span[1]:g}；不设该级别时请删去这个键") \
        if what == "threshold" else \
        t("a finite number on the safe side of its level; leave the key out for the default "
          "deadband", "在该级别安全一侧的有限数；删去这个键则用默认回差")
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) > INT_LIMIT:
        r.problem(full, t(f"a {len(str(abs(raw)))}-digit number is not a {what} any reading "
                          f"reaches", f"{len(str(abs(raw)))} 位的数不是任何读数能达到的{what_zh}"), allowed)
        return None
    if isinstance(raw, float) and math.isinf(raw):
        r.problem(full, t(f"{raw} is not a {what} any reading reaches (a number too large "
                          "for a float, such as 1e400, reads as inf)",
                          f"{raw} 不是任何读数能达到的{what_zh}（1e400 这样超出浮点范围的数会读作 inf）"), allowed)
        return None
    value = r.get(t_doc, key, path, float, None)
    if value is None:
        return None
    if not span[0] <= value <= span[1]:
        r.problem(full, t(f"{value:g} is outside what this quantity can be",
                          f"{value:g} 超出该监测量可能的取值"),
                  t(f"allowed {span[0]:g} to {span[1]:g} in the quantity's unit; leave the key "
                    "out for no such level",
                    f"允许范围 {span[0]:g} 至 {span[1]:g}（该监测量的单位）；不设该级别时请删去"
                    "这个键"))
        return None
    lo, hi = plausible
    if what == "threshold" and ((lo is not None and value < lo) or (hi is not None and value > hi)):
        r.problem(full, t(f"{value:g} is outside the point's plausible range "
                          f"[{_g(lo)}, {_g(hi)}]: a reading that reached it would be refused as "
                          "implausible, so this level could never be raised",
                          f"{value:g} 超出该测点的合理范围 [{_g(lo)}, {_g(hi)}]：达到它的读数会"
                          "被判为不合理，该级别永远不会触发"),
                  t("move the threshold inside plausible_min..plausible_max, or widen them",
                    "把阈值放到 plausible_min..plausible_max 之内，或放宽合理范围"))
        return None
    return value


def _g(v: float | None) -> str:
    return "-inf" if v is None else f"{v:g}"


def _level_set(t_doc: dict, path: str, r: Reader, side: str, deadband: float | None,
               span: tuple[float, float], plausible: tuple[float | None, float | None]
               ) -> LevelSet | None:
    named = [lv for lv in LEVELS if lv in t_doc]
    got = {lv: _level(t_doc, lv, path, r, span, plausible) for lv in named}
    values = [got.get(lv) if got.get(lv) is not None else math.nan for lv in LEVELS]
    if not named:
        r.problem(path, t(f"no {side} threshold set", f"没有设置{_side_zh(side)}阈值"),
                  t("set at least one of blue, yellow, orange, red",
                    "至少设置 blue、yellow、orange、red 中的一个"))
        return None
    if any(got[lv] is None for lv in named):
        return None  # refused above: no level set is built around a hole
    set_levels = [(lv, v) for lv, v in zip(LEVELS, values, strict=True) if not math.isnan(v)]
    for (la, va), (lb, vb) in zip(set_levels, set_levels[1:], strict=False):
        bad = vb < va if side == "upper" else vb > va
        if bad:
            order = "blue <= yellow <= orange <= red" if side == "upper" else \
                "blue >= yellow >= orange >= red"
            word = "higher" if side == "upper" else "lower"
            word_zh = "越高" if side == "upper" else "越低"
            r.problem(f"{path}.{lb}", t(f"{lb} = {vb:g} is out of order against {la} = {va:g} "
                                        f"for direction '{side}'",
                                        f"{lb} = {vb:g} 与 {la} = {va:g} 的顺序不符合方向 "
                                        f"'{side}'"),
                      t(f"{word} values are worse here, so {order}",
                        f"此处数值{word_zh}越危险，所以 {order}"))
    gaps = [abs(b - a) for (_, a), (_, b) in zip(set_levels, set_levels[1:], strict=False) if b != a]
    restore_doc = r.table(t_doc, "restore", f"{path}.restore")
    r.known(restore_doc, set(LEVELS), f"{path}.restore")
    restore: list[float] = []
    for lv, v in zip(LEVELS, values, strict=True):
        given = _level(restore_doc, lv, f"{path}.restore", r, (-math.inf, math.inf),
                       (None, None), "restore level") if lv in restore_doc else None
        if math.isnan(v):
            if lv in restore_doc:
                r.problem(f"{path}.restore.{lv}", t(f"restore level given but no {lv} threshold",
                                                    f"给了恢复值，但没有{_COLOURS_ZH[lv]}阈值"))
            restore.append(math.nan)
            continue
        if given is None:
            # docs/requirements.md R4: without a restore level, a deadband of a few percent applies;
            # capped by a quarter of the smallest gap between levels, so a restore never crosses a
            # lower level (2 % of an elevation such as 1256 m would be 25 m).
            band = deadband if deadband is not None else 0.02 * abs(v)
            if gaps:
                band = min(band, 0.25 * min(gaps))
            if band <= 0:
                band = 1e-9
            band = max(band, 4 * math.ulp(v))  # a restore the float can tell from the level
            given = v - band if side == "upper" else v + band
        elif (side == "upper" and given >= v) or (side == "lower" and given <= v):
            r.problem(f"{path}.restore.{lv}", t(
                f"restore {given:g} must be on the safe side of the {lv} threshold {v:g}",
                f"恢复值 {given:g} 必须在{_COLOURS_ZH[lv]}阈值 {v:g} 的安全一侧"),
                t("below the threshold for 'upper', above it for 'lower'",
                  "方向为 'upper' 时低于阈值，为 'lower' 时高于阈值"))
        restore.append(given)
    return LevelSet(tuple(values), tuple(restore))  # type: ignore[arg-type]


def _side_zh(side: str) -> str:
    return "上限" if side == "upper" else "下限"


def build_thresholds(t_doc: dict, path: str, r: Reader, direction_default: str,
                     span: tuple[float, float] = (-1e12, 1e12),
                     plausible: tuple[float | None, float | None] = (None, None)
                     ) -> Thresholds | None:
    """The point's thresholds; `span` is what its quantity can be in its unit, `plausible` the
    point's plausible_min and plausible_max (None: no limit)."""
    r.known(t_doc, _THRESHOLD_KEYS, path)
    direction = r.get(t_doc, "direction", path, str, direction_default)
    if direction not in ("upper", "lower", "both"):
        r.problem(f"{path}.direction", t(f"unknown direction {direction!r}",
                                         f"未知的方向 {direction!r}"),
                  t("upper, lower or both", "upper、lower 或 both"))
        return None
    deadband = r.get(t_doc, "deadband", path, float, None)
    if deadband is not None and deadband < 0:
        r.problem(f"{path}.deadband", t("must not be negative", "不能为负"))
    upper = lower = None
    if direction == "both":
        for lv in LEVELS:
            if lv in t_doc:
                r.problem(f"{path}.{lv}", t("with direction 'both' the levels go in "
                                            "[thresholds.upper] and [thresholds.lower]",
                                            "方向为 'both' 时，各级别应写在 [thresholds.upper] 和 "
                                            "[thresholds.lower] 中"))
        for name in ("upper", "lower"):
            sub = r.table(t_doc, name, f"{path}.{name}", True)
            r.known(sub, {*LEVELS, "restore"}, f"{path}.{name}")
            levels = _level_set(sub, f"{path}.{name}", r, name, deadband, span, plausible)
            if name == "upper":
                upper = levels
            else:
                lower = levels
    else:
        if "upper" in t_doc or "lower" in t_doc:
            r.problem(path, t(f"sub-tables upper/lower are only for direction 'both' (this point "
                              f"is '{direction}')",
                              f"子表 upper/lower 只用于方向 'both'（该测点为 '{direction}'）"))
        levels = _level_set(t_doc, path, r, direction, deadband, span, plausible)
        if direction == "upper":
            upper = levels
        else:
            lower = levels
    samples = r.number(t_doc, "debounce", path, 3, 1, RAISE_SAMPLES_MAX, integer=True,
                       unit="samples")
    clear_samples = r.number(t_doc, "clear_samples", path, 3, 1, 10_000, integer=True,
                             unit="samples")
    return Thresholds(
        direction=direction, upper=upper, lower=lower,
        raise_samples=samples, raise_hold=r.duration(t_doc, "hold", path, 0.0, hi=RAISE_HOLD_MAX),
        clear_samples=clear_samples,
        clear_hold=r.duration(t_doc, "clear_hold", path, 0.0, hi=7 * 86400.0),
        red_immediate=r.get(t_doc, "red_immediate", path, bool, True),
    )

"""Properties of `minewatch config validate` over damaged site configs (Hypothesis, issue 16).

Real configs are mutated the ways files get damaged or mistyped: bytes flipped, lines deleted,
a table duplicated, the file re-encoded (GBK, UTF-16, a BOM), a value swapped for one of another
type or for an extreme number (inf, nan, 1e400, 400 digits, "99999999999999999999h", "0.001ms").
Whatever comes out:

- the command exits 0 or 2, never 1 or with a traceback; a refusal names the file and, for each
  problem, its line or its key path, in English and in Chinese;
- a config it accepts leaves no level disarmed: every level the file names for a point is a
  finite threshold that the point's threshold detector, built as the daemon builds it, raises
  when a reading reaches it (after the point's own debounce), and every detector the daemon
  would build for the site takes its parameters.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import event, given
from hypothesis import strategies as st

from gateway.cli import main
from gateway.config import ConfigError, ConfigFileError, load_site
from gateway.config.model import LEVELS
from tests.support.fuzz import examples

ROOT = Path(__file__).resolve().parent.parent.parent
BASES = [ROOT / "config" / "examples" / "tailings_pond.toml",
         ROOT / "config" / "templates" / "chemical_plant.toml",
         ROOT / "config" / "templates" / "underground_mine.toml"]
TEXTS = {p.name: p.read_text(encoding="utf-8") for p in BASES}
CJK = re.compile(r"[\u4e00-\u9fff]")

EXTREMES = ["inf", "-inf", "nan", "1e400", "-1e400", "9" * 400, "-" + "9" * 400, "1e300",
            "-1e300", "0", "-1", "0.0", '"99999999999999999999h"', '"0.001ms"', '"inf"', '""',
            '"text"', "true", "[1, 2]", "{ a = 1 }", "[nan, nan, nan, nan]", "1e-300",
            '"1e400s"', "2026-07-20T00:00:00Z"]
_value = st.one_of(
    st.sampled_from(EXTREMES),
    st.integers(-10**30, 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda v: "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v)
        else repr(v)),
)
_line_op = st.one_of(
    st.tuples(st.just("delete_line"), st.integers(0, 400), st.just("")),
    st.tuples(st.just("duplicate_table"), st.integers(0, 60), st.just("")),
    st.tuples(st.just("value"), st.integers(0, 400), _value),
    st.tuples(st.just("swap_lines"), st.integers(0, 400), st.integers(0, 400).map(str)),
)
_byte_op = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 20_000), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 20_000), st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("truncate"), st.integers(0, 20_000), st.just(0)),
)
_encoding = st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])


def _mutate(text: str, line_ops: list, encoding: str, byte_ops: list) -> bytes:
    lines = text.splitlines()
    for op, a, b in line_ops:
        if not lines:
            break
        if op == "delete_line":
            del lines[a % len(lines)]
        elif op == "swap_lines":
            i, j = a % len(lines), int(b) % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "value":
            keyed = [i for i, line in enumerate(lines) if re.match(r"^\s*[\w.\"-]+\s*=", line)]
            if keyed:
                i = keyed[a % len(keyed)]
                key = lines[i].split("=", 1)[0]
                lines[i] = f"{key}= {b}"
        elif op == "duplicate_table":
            heads = [i for i, line in enumerate(lines) if line.lstrip().startswith("[")]
            if heads:
                k = a % len(heads)
                start = heads[k]
                end = heads[k + 1] if k + 1 < len(heads) else len(lines)
                lines[end:end] = lines[start:end]
    try:
        data = bytearray("\n".join(lines).encode(encoding))
    except UnicodeEncodeError:  # a character GBK does not hold: the file stays UTF-8
        data = bytearray("\n".join(lines).encode("utf-8"))
    for op, a, b in byte_ops:
        if op == "flip" and data:
            data[a % len(data)] ^= b
        elif op == "insert":
            at = a % (len(data) + 1)
            data[at:at] = b
        elif op == "truncate" and data:
            del data[a % len(data):]
    return bytes(data)


def _validate(path: Path, lang: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["config", "validate", str(path), "--lang", lang])
    return code, out.getvalue() + err.getvalue()


def _assert_armed(cfg) -> None:
    """Every level of every point is raised by the daemon's own threshold detector when a
    reading reaches it; every detector the daemon builds takes its parameters."""
    from detectors.threshold import ThresholdDetector
    from gateway.detect import _params, threshold_params

    for name in sorted({d for p in cfg.points for d in p.detectors}):
        _params(name, cfg)  # what DetectStage does at start: a refusal would stop the daemon
    params = threshold_params(cfg)
    n = len(cfg.points)
    for p in cfg.points:
        if p.thresholds is None:
            continue
        assert "threshold" in p.detectors, p.name
        th = p.thresholds
        assert th.raise_samples <= 100 and th.raise_hold <= 86400.0, (p.name, th)
        if p.device:
            device = cfg.device(p.device)
            assert device.period <= 7 * 86400 and device.timeout <= 60, device
    for side in ("upper", "lower"):
        for k, level in enumerate(LEVELS):
            x = np.full(n, np.nan)
            for p in cfg.points:
                sets = getattr(p.thresholds, side, None) if p.thresholds else None
                if sets is not None and not math.isnan(sets.thresholds[k]):
                    x[p.index] = sets.thresholds[k]
            armed = np.flatnonzero(~np.isnan(x))
            if not armed.size:
                continue
            det = ThresholdDetector(params)
            hold = float(params.raise_hold[armed].max())
            steps = int(params.raise_samples[armed].max()) + 2
            grade = None
            for s in range(steps):
                out = det.update(armed, 1e9 + s * max(1.0, hold), x[armed],
                                 np.ones(armed.size, np.bool_))
                grade = out.grade
            assert (grade >= k + 1).all(), (side, level, [cfg.points[i].name for i in armed],
                                            grade)


def _named_levels_survive(cfg, raw_text: str) -> None:
    """A level key the file names for a point is a level of the loaded point (no NaN slipped
    through as "no such level")."""
    from gateway.text_files import TextFile
    from gateway.toml_text import parse_toml

    doc = parse_toml(TextFile(Path("x"), raw_text, "utf-8"))
    for i, raw in enumerate(doc.get("points", [])):
        th = raw.get("thresholds") if isinstance(raw, dict) else None
        if not isinstance(th, dict):
            continue
        point = cfg.points[i]
        sides = {"upper": th.get("upper"), "lower": th.get("lower")} \
            if point.thresholds.direction == "both" else {point.thresholds.direction: th}
        for side, table in sides.items():
            for k, level in enumerate(LEVELS):
                if isinstance(table, dict) and level in table:
                    value = getattr(point.thresholds, side).thresholds[k]
                    assert math.isfinite(value), (point.name, side, level, value)


@examples(120)
@given(st.sampled_from(sorted(TEXTS)), st.lists(_line_op, max_size=4), _encoding,
       st.lists(_byte_op, max_size=2), st.sampled_from(["en", "zh"]))
def test_a_damaged_config_is_refused_with_located_problems_or_stays_armed(
        base: str, line_ops: list, encoding: str, byte_ops: list, lang: str) -> None:
    data = _mutate(TEXTS[base], line_ops, encoding, byte_ops)
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / base  # beside no profiles: the library's are found
        path.write_bytes(data)
        code, printed = _validate(path, lang)
        assert code in (0, 2), printed
        assert "Traceback" not in printed
        try:
            cfg = load_site(path)
        except ConfigFileError:
            raise AssertionError("the file was written: it can be read") from None
        except ConfigError as exc:
            event("refused")
            assert code == 2 and exc.problems, printed
            assert str(path) in printed
            for problem in exc.problems:
                assert problem.line is not None or problem.path, problem
                assert CJK.search(problem.message_zh), problem
                assert bool(problem.hint) == bool(problem.hint_zh), problem
            return
        assert code == 0, printed
        event("accepted")
        _named_levels_survive(cfg, _decoded(data))
        _assert_armed(cfg)


def _decoded(data: bytes) -> str:
    from gateway.text_files import decode_text

    return decode_text(data, "x").text


@examples(60)
@given(st.sampled_from(sorted(TEXTS)), st.sampled_from(LEVELS), _value)
def test_no_value_of_a_threshold_switches_its_level_off(base: str, level: str,
                                                        value: str) -> None:
    """The example's first threshold line with `level` set to anything at all: refused, or a
    level that is raised (the issue's inf, nan and 1e400 used to pass as "no such level")."""
    text = TEXTS[base]
    m = re.search(rf"\b{level} = [^,}}\n]+", text)
    if m is None:
        return
    mutated = text[:m.start()] + f"{level} = {value}" + text[m.end():]
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / base
        path.write_text(mutated, encoding="utf-8")
        try:
            cfg = load_site(path)
        except ConfigError as exc:
            event("refused")
            assert all(p.line is not None or p.path for p in exc.problems)
            return
    event("accepted")
    _named_levels_survive(cfg, mutated)
    _assert_armed(cfg)

"""Every config problem has its Chinese (issue 16): the loader writes each message and hint as a
`Text` with both languages side by side, the detectors' parameter checks and tomllib's syntax
errors it quotes are translated, and `--lang` works before or after the command."""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config.detector_params import (
    LIVE_DETECTORS,
    detector_param_spec,
    detector_params_problem,
)
from gateway.i18n import default_lang, detector_problem_zh
from gateway.text_files import TextFile, TextFileError
from gateway.toml_text import parse_toml

ROOT = Path(__file__).resolve().parent.parent.parent
CJK = re.compile(r"[\u4e00-\u9fff]")
EXAMPLE = ROOT / "config" / "examples" / "tailings_pond.toml"


def _problem_calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "problem":
            yield node


def test_every_problem_the_loader_raises_is_written_in_both_languages() -> None:
    """A plain string (a constant, an f-string, a concatenation) as a message or hint would
    print English under --lang zh; every call passes a Text, or one it was handed."""
    plain = (ast.Constant, ast.JoinedStr, ast.BinOp)
    calls = 0
    for path in sorted((ROOT / "gateway" / "config").glob("*.py")):
        for call in _problem_calls(path):
            calls += 1
            for arg in call.args[1:] + [k.value for k in call.keywords]:
                assert not isinstance(arg, plain), f"{path.name}:{call.lineno}"
    assert calls > 80


def _bad_values(kind: str, shape: tuple[int, ...]):
    scalars = [math.nan, math.inf, -math.inf, -1.0, 0.0, 0.5, 1e12, -1e12] if kind != "int" \
        else [-5, 0, 1, 10**6]
    if kind == "bool":
        return []
    if shape:
        return [tuple([v] * shape[0]) for v in scalars] + [(4.0, 3.0, 2.0, 1.0),
                                                          (1.0, 2.0, math.nan, 1.0)]
    return scalars


def test_every_detector_parameter_problem_reachable_from_a_config_has_its_chinese() -> None:
    seen: set[str] = set()
    for detector in sorted(LIVE_DETECTORS):
        for key, (kind, shape) in detector_param_spec(detector).items():
            for value in _bad_values(kind, shape):
                problem = detector_params_problem(detector, {key: value})
                if not problem:
                    continue
                message = re.sub(r"^channel \d+: ", "", problem)
                zh = detector_problem_zh(message)
                assert not zh.startswith("检测器参数无效"), (detector, key, value, message)
                assert CJK.search(zh), zh
                seen.add(re.sub(r"[-\d.e+]+|nan|inf", "#", message))
    assert len(seen) >= 20, sorted(seen)


@pytest.mark.parametrize("text", [
    "[site]\ncode = \n", "[site]\n[site]\n", "= 1\n", "a = [1, 2\n", "a = { b = 1\n",
    'a = "unterminated\n', "a = 1 2\n", "a.b = 1\na = 2\n", "[[a]\n", "a = 1979-13-99\n",
    "a = \"\\q\"\n", "a = 1\na = 2\n", "x = [" * 3000 + "\n",
])
def test_toml_syntax_errors_are_located_and_translated(text: str) -> None:
    with pytest.raises(TextFileError) as info:
        parse_toml(TextFile(Path("site.toml"), text, "utf-8"))
    err = info.value
    assert err.line is not None or "nested" in err.reason.en, err
    assert "不是有效的 TOML" in err.reason.zh and "语法错误" not in err.reason.zh, err.reason


def test_lang_and_json_go_before_or_after_the_command(capsys) -> None:
    for argv in (["--lang", "zh", "config", "validate", str(EXAMPLE)],
                 ["config", "--lang", "zh", "validate", str(EXAMPLE)],
                 ["config", "validate", str(EXAMPLE), "--lang", "zh"]):
        assert main(argv) == 0, argv
        assert "配置有效" in capsys.readouterr().out, argv
    for argv in (["--json", "config", "validate", str(EXAMPLE)],
                 ["config", "validate", "--json", str(EXAMPLE)]):
        assert main(argv) == 0
        assert '"ok": true' in capsys.readouterr().out
    # typed before the command, a flag the command does not take is refused, not ignored
    assert main(["--json", "compile"]) == 2
    assert "has no --json" in capsys.readouterr().err


def test_the_locale_decides_when_lang_is_not_given() -> None:
    assert default_lang({"LANG": "zh_CN.UTF-8"}) == "zh"
    assert default_lang({"LC_ALL": "C", "LANG": "zh_CN.UTF-8"}) == "en"

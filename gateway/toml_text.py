"""Reading the TOML files of the gateway (site configs, device profiles) and of the simulator
(scenarios): the file through `gateway.text_files`, then tomllib, whose syntax errors come back
as a `TextFileError` with the line and column, in Chinese and English, and a hint for the usual
cause (a text value without quotes, a table written twice, a stray character).

>>> parse_toml(TextFile(Path("site.toml"), "[site]\\ncode = \\n", "utf-8"))
Traceback (most recent call last):
gateway.text_files.TextFileError: site.toml:2:8: not valid TOML: Invalid value (hint: a text value needs quotes, e.g. name = "WL-01"; a number none)
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from gateway.i18n import Text, t
from gateway.text_files import TextFile, TextFileError, read_text_file

__all__ = ["parse_toml", "read_toml"]

# tomllib's messages (Python 3.11-3.13) -> (Chinese, hint); matched on their start
_MESSAGES: list[tuple[str, str, Text | None]] = [
    ("Invalid value", "无效的值",
     t('a text value needs quotes, e.g. name = "WL-01"; a number none',
       '文本值要加引号，例如 name = "WL-01"；数字不加')),
    ("Invalid statement", "无效的语句",
     t("each line is `key = value`, a [table] or [[array]] header, or a # comment",
       "每行应是 `键 = 值`、[表] 或 [[数组]] 标题，或以 # 开头的注释")),
    ("Expected '=' after a key", "键后面缺少 '='",
     t("write `key = value`; a key with spaces or Chinese needs quotes: \"库水位\" = 1",
       "应写成 `键 = 值`；含空格或中文的键要加引号：\"库水位\" = 1")),
    ("Cannot declare", "重复声明了同一个表",
     t("a [table] may appear once; sections that repeat are [[buses]], [[devices]], "
       "[[points]] (double brackets)",
       "[表] 只能出现一次；可重复的节是 [[buses]]、[[devices]]、[[points]]（双方括号）")),
    ("Cannot overwrite a value", "同一个键写了两次",
     t("a key may appear once per table", "每个表中同一个键只能写一次")),
    ("Cannot mutate immutable namespace", "不能修改已用内联表定义的内容",
     t("a table written inline { ... } cannot be extended later", "用 { ... } 写成的内联表之后不能再扩展")),
    ("Cannot redefine namespace", "不能重新定义已有的表",
     t("the table was already defined as something else", "该表名已被定义为别的类型")),
    ("Duplicate inline table key", "内联表中的键重复", None),
    ("Expected ']' at the end of a table declaration", "表标题缺少结尾的 ']'", None),
    ("Expected ']]' at the end of an array declaration", "数组标题缺少结尾的 ']]'", None),
    ("Invalid initial character for a key part", "键的首字符无效",
     t("a key is letters, digits, '_' and '-', or quoted", "键由字母、数字、'_'、'-' 组成，否则要加引号")),
    ("Unclosed array", "数组没有闭合", t("an array ends with ]", "数组以 ] 结尾")),
    ("Unclosed inline table", "内联表没有闭合",
     t("an inline table ends with } on the same line", "内联表必须在同一行以 } 结尾")),
    ("Unterminated string", "字符串没有结束",
     t("a quoted text ends with the same quote on the same line", "加引号的文本必须在同一行用同样的引号结束")),
    ("Unescaped '\\' in a string", "字符串中有未转义的 '\\'",
     t("write a Windows path in single quotes: 'C:\\minewatch\\ca.pem'",
       "Windows 路径请用单引号：'C:\\minewatch\\ca.pem'")),
    ("Invalid hex value", "无效的十六进制转义", None),
    ("Escaped character is not a Unicode scalar value", "转义字符不是有效的 Unicode 字符", None),
    ("Invalid date or datetime", "无效的日期或时间", None),
    ("Illegal character", "非法字符",
     t("a control character or a stray byte: retype that place",
       "控制字符或多余的字节：请重新输入该处")),
    ("Found invalid character", "发现无效字符",
     t("a stray character after a value: one value per line", "值后面有多余的字符：每行一个值")),
    ("Expected", "缺少预期的字符", None),
]
_AT = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)\s*$")


def parse_toml(file: TextFile) -> dict:
    """The document; TextFileError naming the line and column of a syntax error."""
    try:
        return tomllib.loads(file.text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = _AT.search(message)
        bare = message[:m.start()] if m else message
        line = int(m.group(1)) if m and m.group(1) else None
        column = int(m.group(2)) if m and m.group(2) else None
        if m and m.group(1) is None:
            line = file.text.count("\n") + 1
        zh, hint = next(((zh, hint) for en, zh, hint in _MESSAGES if bare.startswith(en)),
                        ("语法错误", None))
        detail = bare[len(next((en for en, _, _ in _MESSAGES if bare.startswith(en)), "")):]
        raise TextFileError(file.path, t(f"not valid TOML: {bare}",
                                         f"不是有效的 TOML：{zh}{detail}"),
                            hint, line, column) from None
    except RecursionError:
        raise TextFileError(file.path, t("not valid TOML: arrays or tables nested too deeply",
                                         "不是有效的 TOML：数组或表嵌套过深")) from None


def read_toml(path: str | Path) -> tuple[dict, TextFile]:
    """Read (`gateway.text_files`) and parse a TOML file; TextFileError says what stops it."""
    file = read_text_file(path)
    return parse_toml(file), file

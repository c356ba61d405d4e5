"""Reading the text files people give the gateway (site configs, profiles, scenarios, sidecars,
certificates, secret files, logger exports) and the text of command-line values, one way.

A file is decoded as UTF-8 (a UTF-8 byte-order mark is dropped; a UTF-16 mark, which Windows
Notepad's "Unicode" writes, decodes as UTF-16), else as GB18030 (a superset of GBK, what a
Chinese Windows editor or Excel writes); `TextFile.encoding` says which. A file that is UTF-8
but for a few bytes (a damaged copy, a byte flipped on an SD card) is not taken for GB18030,
which would turn its Chinese into other Chinese without a word: it is an error naming the line
and column of the first bad byte. So is a file that is neither, and one that cannot be read at
all (missing, a folder, no permission): `TextFileError`, in Chinese and English, never a
traceback. `lenient=True` (logger exports, whose bad rows are skipped and counted anyway)
replaces undecodable bytes instead and says how many.

This module depends on nothing of the gateway but its words (`gateway.i18n`), so the profile
loader, and through it the simulator, read files the same way.

>>> decode_text("时间,库水位,浸润线埋深".encode("gbk"), "a.csv").encoding
'gb18030'
>>> decode_text(b"\\xef\\xbb\\xbfcode = 1", "site.toml").text
'code = 1'
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from gateway.i18n import Text, t

__all__ = ["TextFile", "TextFileError", "decode_arg", "decode_text", "read_secret",
           "read_text_file"]

PLAIN = ("utf-8", "utf-8 with BOM")  # encodings nobody needs to be told about
_MAX_BYTES = 64 * 1024 * 1024  # no text file the gateway reads is larger; a device file is not one

_ERRNO = {  # the reasons a field engineer meets, in both languages
    errno.ENOENT: t("no such file", "文件不存在"),
    errno.EACCES: t("permission denied", "没有读取权限"),
    errno.EPERM: t("permission denied", "没有读取权限"),
    errno.EISDIR: t("it is a folder, not a file", "这是一个文件夹，不是文件"),
    errno.ENOTDIR: t("a part of the path is not a folder", "路径中有一段不是文件夹"),
    errno.ELOOP: t("too many symbolic links", "符号链接层数过多"),
    errno.ENAMETOOLONG: t("file name too long", "文件名过长"),
    errno.EIO: t("input/output error (a failing disk or card?)", "读写错误（磁盘或存储卡故障？）"),
}


@dataclass(frozen=True)
class TextFile:
    """A decoded text file and how it was decoded."""

    path: Path
    text: str
    encoding: str  # utf-8, utf-8 with BOM, utf-16, gb18030 (with a count of replaced bytes)

    def note(self, lang: str = "en") -> str:
        """'' for plain UTF-8, else what was used (to be shown beside the file's name)."""
        if self.encoding in PLAIN:
            return ""
        return f"（按 {self.encoding.upper()} 读取）" if lang == "zh" else \
            f" (read as {self.encoding.upper()})"


class TextFileError(ValueError):
    """A file that cannot be read as text, with where and why in both languages."""

    def __init__(self, path: str | Path, reason: Text, hint: Text | None = None,
                 line: int | None = None, column: int | None = None, unreadable: bool = False):
        self.path = Path(path)
        self.unreadable = unreadable  # the file could not be had at all (vs. what it holds)
        self.reason = reason
        self.hint = hint
        self.line = line
        self.column = column
        super().__init__(self.render("en"))

    def where(self) -> str:
        if self.line is None:
            return str(self.path)
        return f"{self.path}:{self.line}" + (f":{self.column}" if self.column else "")

    def render(self, lang: str = "en") -> str:
        text = f"{self.where()}: {self.reason.in_lang(lang)}"
        if self.hint is not None:
            text += f"（提示：{self.hint.zh}）" if lang == "zh" else f" (hint: {self.hint.en})"
        return text


def unreadable(path: str | Path, exc: OSError) -> TextFileError:
    """The error for a file the system would not give us."""
    why = _ERRNO.get(exc.errno or 0)
    if why is None:
        detail = exc.strerror or type(exc).__name__
        why = t(detail, f"无法读取（{detail}）")
    hint = t("check the path; a relative path starts from the folder the command runs in",
             "请检查路径；相对路径从运行命令的文件夹算起") \
        if exc.errno == errno.ENOENT else None
    return TextFileError(path, t(f"cannot read: {why.en}", f"无法读取：{why.zh}"), hint,
                         unreadable=True)


def read_text_file(path: str | Path, lenient: bool = False) -> TextFile:
    """The file's text (see the module's rules); TextFileError when it cannot be had."""
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "Is a directory")
        with path.open("rb") as fh:
            data = fh.read(_MAX_BYTES + 1)
    except OSError as exc:
        raise unreadable(path, exc) from None
    except ValueError:  # a NUL byte in the name
        raise TextFileError(path, t("cannot read: the file name holds a NUL byte",
                                    "无法读取：文件名中含有空字符"), unreadable=True) from None
    if len(data) > _MAX_BYTES:
        raise TextFileError(path, t(f"larger than {_MAX_BYTES >> 20} MiB: not a text file "
                                    "the gateway reads",
                                    f"超过 {_MAX_BYTES >> 20} MiB：不是网关读取的文本文件"),
                            unreadable=True)
    return decode_text(data, path, lenient)


def decode_text(data: bytes, path: str | Path, lenient: bool = False) -> TextFile:
    """Decode a file's bytes by the module's rules."""
    path = Path(path)
    if data.startswith(b"\xef\xbb\xbf"):
        return _utf8(data[3:], path, lenient, "utf-8 with BOM", 3)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return TextFile(path, data.decode("utf-16"), "utf-16")
        except UnicodeDecodeError as exc:
            if lenient:
                text = data.decode("utf-16", errors="replace")
                return TextFile(path, text, _replaced("utf-16", text))
            before = data[:exc.start - exc.start % 2].decode("utf-16", errors="replace")
            line = before.count("\n") + 1
            column = len(before) - before.rfind("\n")
            raise TextFileError(path, t("starts with a UTF-16 byte-order mark but is not UTF-16 "
                                        "(cut short, or a stray byte)",
                                        "以 UTF-16 字节序标记开头，但不是 UTF-16（文件被截断或"
                                        "有多余的字节）"), _SAVE_AS, line, column) from None
    try:
        return TextFile(path, data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    if _damaged_utf8(data):
        return _utf8(data, path, lenient, "utf-8", 0)
    try:
        return TextFile(path, data.decode("gb18030"), "gb18030")
    except UnicodeDecodeError as exc:
        if lenient:
            text = data.decode("gb18030", errors="replace")
            return TextFile(path, text, _replaced("gb18030", text))
        # the later of the two failures: in a GBK file with one broken character that is
        # the broken one, not the first Chinese character
        offset = max(first_bad, exc.start)
        line, column = _position(data, offset)
        raise TextFileError(
            path, t(f"neither UTF-8 nor GB18030 text: byte 0x{data[offset]:02x} cannot be "
                    "read (is it a text file?)",
                    f"既不是 UTF-8 也不是 GB18030 文本：字节 0x{data[offset]:02x} 无法识别"
                    "（是文本文件吗？）"), _SAVE_AS, line, column) from None


_SAVE_AS = t("save it as UTF-8 (in Notepad: Save As, Encoding UTF-8)",
             "请另存为 UTF-8 编码（记事本：另存为，编码选 UTF-8）")


def _utf8(data: bytes, path: Path, lenient: bool, label: str, skipped: int) -> TextFile:
    try:
        return TextFile(path, data.decode("utf-8"), label)
    except UnicodeDecodeError as exc:
        if lenient:
            text = data.decode("utf-8", errors="replace")
            return TextFile(path, text, _replaced(label, text))
        line, column = _position(data, exc.start)
        raise TextFileError(
            path, t(f"not valid UTF-8: byte 0x{data[exc.start]:02x} (the rest of the file is "
                    "UTF-8: a damaged copy?)",
                    f"不是有效的 UTF-8：字节 0x{data[exc.start]:02x} 无法识别（文件其余部分是 "
                    "UTF-8：文件可能已损坏）"),
            t("retype the character at that place, or copy the file again",
              "请重新输入该处的字符，或重新拷贝文件"), line, column) from None


def _replaced(label: str, text: str) -> str:
    return f"{label} ({text.count(chr(0xFFFD))} undecodable byte sequence(s) replaced)"


def _damaged_utf8(data: bytes) -> bool:
    """UTF-8 with a few bad bytes rather than GBK: far more well-formed multi-byte characters
    than broken ones (GBK read as UTF-8 is mostly broken, by about four to one)."""
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    good = sum(1 for c in text if c > "\x7f") - bad
    return good >= 1 and good >= 3 * bad


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """(line, column) of a byte offset, both from 1; the column counts characters."""
    line = data.count(b"\n", 0, offset) + 1
    start = data.rfind(b"\n", 0, offset) + 1
    return line, len(data[start:offset].decode("utf-8", errors="replace")) + 1


def read_secret(path: str | Path) -> str:
    """The one line of a secret file (a password or a token), stripped; TextFileError when the
    file is unreadable, empty or holds more than one line. The secret itself is never put in
    a message."""
    text = read_text_file(path).text.strip()
    if not text:
        raise TextFileError(path, t("is empty", "是空文件"),
                            t("put the secret on one line, e.g. `openssl rand -hex 32 > FILE`",
                              "把密钥写在一行里，例如 `openssl rand -hex 32 > FILE`"))
    if "\n" in text or "\r" in text:
        raise TextFileError(path, t(f"holds {len(text.splitlines())} lines, not one",
                                    f"有 {len(text.splitlines())} 行，应只有一行"),
                            t("the file holds the secret alone, on one line",
                              "文件中只放密钥本身，占一行"))
    if any(c < " " or c == "\x7f" for c in text):
        raise TextFileError(path, t("holds control characters", "含有控制字符"),
                            t("the secret is printable text on one line",
                              "密钥应是一行可打印的文本"))
    return text


def decode_arg(value: str) -> str:
    """A command-line value as the user typed it: a terminal in GBK hands Python bytes that are
    not UTF-8 (kept as surrogates), which are decoded as GB18030 here; ValueError when they
    are neither."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    raw = os.fsencode(value)
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        raise ValueError(f"{raw!r} is neither UTF-8 nor GB18030 text") from None

"""Canonical JSON (RFC 8785, the JSON Canonicalization Scheme): the bytes a command's signature
covers, so a platform in any language signs exactly what the gateway verifies.

Objects with their keys sorted by UTF-16 code units, no whitespace, strings with only the
escapes JSON requires, numbers as ECMAScript prints them (shortest round trip; integers without
a fraction; an exponent only beyond 1e21 or below 1e-6). NaN and infinities are not JSON.

>>> canonical({"b": [1.0, 2.5e-7, 1e21], "a": "é\\n", "c": None}).decode()
'{"a":"é\\\\n","b":[1,2.5e-7,1e+21],"c":null}'
"""

from __future__ import annotations

import json
import math
from decimal import Decimal

__all__ = ["canonical", "es_number"]


def canonical(value: object) -> bytes:
    """The RFC 8785 form of a JSON value (dict, list, str, int, float, bool, None)."""
    return _encode(value).encode("utf-8")


def _encode(v: object) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        # ECMAScript numbers are doubles: an integer beyond 2**53 is printed as the double it is
        return str(v) if abs(v) <= 2**53 else es_number(float(v))
    if isinstance(v, float):
        return es_number(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ",".join(_encode(x) for x in v) + "]"
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _encode(v[k])
                              for k in keys) + "}"
    raise TypeError(f"not a JSON value: {type(v).__name__}")


def es_number(x: float) -> str:
    """A double as ECMAScript's Number.prototype.toString prints it (RFC 8785 §3.2.2.3).

    >>> [es_number(v) for v in (0.0, -0.0, 1.0, 4.5, 0.002, 1e-7, 1e20, 1e21, 333333333.33333329)]
    ['0', '0', '1', '4.5', '0.002', '1e-7', '100000000000000000000', '1e+21', '333333333.3333333']
    """
    if not math.isfinite(x):
        raise ValueError(f"{x} is not a JSON number")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    # repr is the shortest string that reads back as the same double, as ECMAScript requires
    _, digits_t, exp = Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, digits_t)).lstrip("0")
    assert isinstance(exp, int)
    while len(digits) > 1 and digits.endswith("0"):
        digits = digits[:-1]
        exp += 1
    k = len(digits)
    n = exp + k  # the value is 0.<digits> x 10**n
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * -n + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        out = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + out

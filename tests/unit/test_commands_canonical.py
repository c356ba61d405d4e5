"""Canonical JSON as RFC 8785 prints it: the bytes a command's signature covers must be the same
in the platform's language and in the gateway."""

from __future__ import annotations

import json
import struct

import pytest

from gateway.commands.canonical import canonical, es_number

# RFC 8785 Appendix B: IEEE 754 bit patterns and how ECMAScript prints them
VECTORS = [
    ("0000000000000000", "0"), ("8000000000000000", "0"), ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"), ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"), ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"), ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"), ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"), ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"), ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"), ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"), ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"), ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "text"), VECTORS)
def test_numbers_print_as_ecmascript_does(bits: str, text: str) -> None:
    (x,) = struct.unpack(">d", bytes.fromhex(bits))
    assert es_number(x) == text


def test_the_rfc_example_object() -> None:
    # RFC 8785 §3.2.2, parsed as a platform would have sent it
    given = json.loads('{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],'
                       '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
                       '"literals":[null,true,false]}')
    assert canonical(given) == ('{"literals":[null,true,false],"numbers":[333333333.3333333,'
                                '1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
                                ).encode()


def test_keys_sort_by_utf16_code_units_and_big_integers_print_as_doubles() -> None:
    # U+1F600 (a surrogate pair, 0xD83D...) sorts before U+FB01 in UTF-16, after it by code point
    assert canonical({"\ufb01": 1, "\U0001f600": 2, "a": 2**53}) == \
        '{"a":9007199254740992,"😀":2,"ﬁ":1}'.encode()
    # beyond 2**53 an ECMAScript number is the nearest double, printed shortest
    assert canonical({"big": 2**60}) == b'{"big":1152921504606847000}'


def test_nan_is_not_json() -> None:
    with pytest.raises(ValueError):
        canonical({"v": float("nan")})

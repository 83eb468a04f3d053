"""engine.jsoncodec: fast encoding that never changes a value, and upstream JSON spliced as it came."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from naftiko.adapters.mcp.jsonrpc import encode_message
from naftiko.engine.jsoncodec import RawJSON, dumps, loads, passthrough

BIG = 123456789012345678901234567890


def test_dumps_is_compact_utf8() -> None:
    assert dumps({"a": [1, 2.5, None, True], "é": "ü"}) == '{"a":[1,2.5,null,true],"é":"ü"}'.encode()


@pytest.mark.parametrize("value", [{"id": BIG}, {"text": "lone \ud800 surrogate"}, {1: "int key"}])
def test_what_orjson_refuses_is_still_encoded_exactly(value: object) -> None:
    encoded = dumps(value)
    assert json.loads(encoded) == json.loads(json.dumps(value))
    if "id" in value:  # type: ignore[operator]
        assert str(BIG).encode() in encoded


def test_raw_json_is_spliced_as_it_came() -> None:
    raw = b'{"n": 1.50, "big": 123456789012345678901234567890}'
    assert dumps({"x": RawJSON(raw, True)}) == b'{"x":' + raw + b"}"


def test_raw_json_in_a_value_orjson_refuses_falls_back_to_its_parsed_value() -> None:
    encoded = dumps({"id": BIG, "x": RawJSON(b"[1, 2]", False)})
    assert json.loads(encoded) == {"id": BIG, "x": [1, 2]}


def test_passthrough_keeps_valid_utf8_json_unparsed() -> None:
    raw = '{\n  "name": "é",\n  "big": 123456789012345678901234567890\n}\n'.encode()
    checked = passthrough(raw)
    assert isinstance(checked, RawJSON) and checked.raw is raw and checked.is_object
    assert not passthrough(b"[1]").is_object and not passthrough(b'"text"').is_object


@pytest.mark.parametrize(
    "raw,expected",
    [
        ('{"a": "é"}'.encode("utf-16"), {"a": "é"}),  # not UTF-8: re-encoded from its value
        (b'{"a": "\\ud800"}', {"a": "\ud800"}),
    ],
)
def test_passthrough_parses_what_cannot_be_spliced(raw: bytes, expected: object) -> None:
    assert passthrough(raw) == expected


@pytest.mark.parametrize("raw", [b"{", b"<html>", b"{'a': 1}", b'{"a": 1} trailing'])
def test_passthrough_refuses_what_is_not_json(raw: bytes) -> None:
    with pytest.raises(ValueError):
        passthrough(raw)


def test_encoded_messages_stay_on_one_line_with_a_pretty_printed_upstream_answer() -> None:
    raw = b'{\n  "a": [\n    1,\n    2\n  ],\r\n  "b": "x\\ny"\n}\n'
    encoded = encode_message({"result": {"structuredContent": passthrough(raw), "text": "line\nbreak"}})
    assert b"\n" not in encoded
    assert json.loads(encoded) == {"result": {"structuredContent": {"a": [1, 2], "b": "x\ny"}, "text": "line\nbreak"}}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id": 123456789012345678901234567890}',  # orjson would round it to a float
        b"[-9223372036854775809, 18446744073709551616]",
        b'{"a": "\\ud800"}',  # orjson refuses a lone surrogate
        b"[1e400]",
        '{"a": "é"}'.encode("utf-16"),
        b'{"jsonrpc": "2.0", "id": 1, "params": {"n": 1.5, "s": "x"}}',
    ],
)
def test_loads_reads_what_the_standard_library_reads(raw: bytes) -> None:
    value = loads(raw)
    assert value == json.loads(raw) and repr(value) == repr(json.loads(raw))


@pytest.mark.parametrize("raw", [b"NaN", b'{"a": Infinity}', b"{", b'{"a": 1} x', b"\xff"])
def test_loads_refuses_what_is_not_json(raw: bytes) -> None:
    with pytest.raises(ValueError):
        loads(raw)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 8, max_value=2**70)  # around where orjson would have made floats
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),  # lone surrogates included
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=25,
)


def _refuse(name: str) -> Any:
    raise ValueError(name)


def _standard(raw: bytes) -> Any:
    """The reference: the standard library, NaN and Infinity refused as `loads` documents."""
    return json.loads(raw, parse_constant=_refuse)


def _same_as_standard(raw: bytes) -> None:
    try:
        expected = _standard(raw)
    except (ValueError, RecursionError):
        with pytest.raises((ValueError, RecursionError)):
            loads(raw)
        return
    got = loads(raw)
    assert got == expected and repr(got) == repr(expected)  # repr: 1 is not 1.0, -0.0 is not 0.0


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, st.booleans(), st.sampled_from([None, 1]))
def test_loads_reads_any_json_text_as_the_standard_library_does(value: Any, ascii: bool, indent: int | None) -> None:
    text = json.dumps(value, ensure_ascii=ascii, indent=indent, allow_nan=False)
    _same_as_standard(text.encode("utf-8", "surrogatepass"))  # a lone surrogate as the standard library reads it


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, st.data())
def test_loads_refuses_what_the_standard_library_refuses(value: Any, data: st.DataObject) -> None:
    raw = bytearray(json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8", "surrogatepass"))
    for _ in range(data.draw(st.integers(1, 3))):  # one to three bytes changed, dropped or added
        at = data.draw(st.integers(0, len(raw)))
        byte = data.draw(st.sampled_from(b'{}[]":,.-+eE0129 \t\nntuf\\\x00\xff\xc3'))
        edit = data.draw(st.sampled_from(["change", "drop", "add"]))
        if edit == "add" or at == len(raw):
            raw.insert(at, byte)
        elif edit == "drop":
            del raw[at]
        else:
            raw[at] = byte
    _same_as_standard(bytes(raw))

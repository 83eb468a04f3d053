"""The format decoders on hostile input: they finish within a generous bound and give data or a
FormatError, never another exception; YAML reads as ruamel.yaml reads it; and through a served
capability a hostile body is a clear 502 while the event loop keeps answering other requests.

Each fixed case is about 1 MB: a quadratic decoder takes minutes on it (`'<a'` repeated through
CPython's html.parser: 6.9 s at 100 KB), so the 5 s bound is a hang guard, not a speed test.
"""

from __future__ import annotations

import asyncio
import math
import string
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor

from naftiko.engine.formats import FormatError, decode
from naftiko.engine.jsoncodec import dumps
from tests.support import RecordingUpstream, Reply

MB = 1 << 20
BOUND = 5.0  # seconds for about 1 MB: generous for a linear decoder on a loaded 2-core machine
FUZZ = settings(derandomize=True, max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decoded_or_refused(body: bytes | str, fmt: str, **options: Any) -> Any:
    """Decode within the bound; the data must be JSON-encodable. A FormatError is fine too."""
    started = time.perf_counter()
    try:
        data = decode(body, fmt, **options)
        dumps(data)  # no cycles, nothing too deep to encode
    except FormatError as exc:
        data = exc
    elapsed = time.perf_counter() - started
    assert elapsed < BOUND, f"{fmt} took {elapsed:.1f} s on {len(body)} bytes"
    return data


def bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


HOSTILE: dict[str, list[tuple[str, str]]] = {
    "html": [
        ("<a repeated", "<a" * (MB // 2)),
        ("unmatched end tags", "<div>" * 200 + "</x>" * (MB // 4)),
        ("nested tags", "<div>" * (MB // 5)),
        ("nested formatting and paragraphs", "<b><p>" * (MB // 6)),
        ("nested tables", "<table><tr><th>h</th></tr><tr><td>x" * (MB // 35)),
        ("unclosed comment", "<table><tr><th>h<tr><td>a<!--" + "-" * MB),
        ("comment openers", "<!--" * (MB // 4)),
        ("unclosed quote", '<a href="' + "x" * MB),
        ("quotes repeated", '<a href="a' * (MB // 10)),
        ("unclosed cdata", "<![CDATA[" + "x" * MB),
        ("raw text never closed", "<script>" + "<a" * (MB // 2)),
        ("many attributes", "<a " + "b=c " * (MB // 4) + ">"),
        ("entities", "&amp;&#x41;&bogus" * (MB // 16)),
    ],
    "xml": [
        ("nested elements", "<a>" * (MB // 3)),
        ("unclosed comment", "<r><!--" + "x" * MB),
        ("unclosed cdata", "<r><![CDATA[" + "x" * MB),
        ("unclosed quote", "<r a='" + "x" * MB),
        ("many attributes", "<r " + " ".join(f"a{i}='1'" for i in range(MB // 10)) + "/>"),
        ("many children", "<r>" + "<a/>" * (MB // 4) + "</r>"),
        ("<a repeated", "<a" * (MB // 2)),
        ("entity expansion", '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">]><r>' + "&a;" * (MB // 3) + "</r>"),
    ],
    "yaml": [
        ("alias bomb", bomb(9)),
        ("self reference", "a: &a [1, *a]\n"),
        ("nested flow", "[" * MB),
        ("nested mappings", "{a: " * (MB // 4)),
        ("nested block sequences", "- " * (MB // 2)),
        ("unclosed quote", "a: '" + "x" * MB),
        ("many keys", "".join(f"k{i}: {i}\n" for i in range(MB // 10))),
        ("many aliases", "- &a x\n" + "- *a\n" * (MB // 5)),
        ("long plain scalar", "a: " + "x " * (MB // 2)),
        ("huge integer", "a: " + "9" * MB),
    ],
    "json": [
        ("nested arrays", "[" * MB),
        ("unclosed string", '"' + "x" * MB),
    ],
    "csv": [
        ("huge field", 'a,b\n"' + "x" * MB + '",1\n'),
        ("unclosed quote", 'a,b\n"' + "x" * MB),
        ("wide row", "a\n" + "," * MB),
        ("many rows", "a,b,c\n" + "1,2,3\n" * (MB // 6)),
    ],
    "markdown": [
        ("heading then spaces", "# a" + " " * MB + "b"),
        ("heading closing spaces", "# a" + " " * MB + "#x"),
        ("brackets", "# h\n" + "[" * MB),
        ("link openers", "# h\n" + "[a](" * (MB // 4)),
        ("image openers", "# h\n" + "![a" * (MB // 3)),
        ("emphasis runs", "# h\n" + "*a _b " * (MB // 6)),
        ("comment openers", "# h\n" + "<!--" * (MB // 4)),
        ("backtick runs of growing length", "# h\n" + "".join("`" * k + "a" for k in range(1, 1400))),
        ("nested quotes", ">" * MB + " a"),
        ("spaces in a paragraph", "# h\na" + " " * MB + "b\nc"),
        ("tag attributes", "# h\nx <a" + " b='c'" * (MB // 6)),
        ("wide table", "|" + "a|" * (MB // 4) + "\n|" + "-|" * (MB // 4) + "\n"),
        ("many paragraphs", "# h\n" + "a\n\n" * (MB // 3)),
        ("front matter alias bomb", "---\n" + bomb(9) + "---\n# x\n"),
    ],
}


@pytest.mark.parametrize(
    "fmt, name, body",
    [(fmt, name, body) for fmt, cases in HOSTILE.items() for name, body in cases],
    ids=lambda v: v if len(v) < 40 else "",
)
def test_hostile_bodies_finish_with_data_or_a_format_error(fmt: str, name: str, body: str) -> None:
    decoded_or_refused(body.encode(), fmt)


def test_the_alias_bomb_is_refused_by_the_expansion_limit() -> None:
    result = decoded_or_refused(bomb(9).encode(), "yaml")
    assert isinstance(result, FormatError) and result.limit == "decoded_items"
    result = decoded_or_refused(("---\n" + bomb(9) + "---\n# x\n").encode(), "markdown")
    assert isinstance(result, FormatError) and result.limit == "decoded_items"


# --------------------------------------------------------------- random input

TOKENS = {
    "html": [
        "<",
        ">",
        "</",
        "/>",
        "<!--",
        "-->",
        "<![CDATA[",
        "]]>",
        "<!DOCTYPE html>",
        "<?x",
        "=",
        '"',
        "'",
        " ",
        "\n",
        "&amp;",
        "&#",
        "&",
        "<table>",
        "</table>",
        "<tr>",
        "</tr>",
        "<th>",
        "<td>",
        "</td>",
        "<thead>",
        "<tbody>",
        "<div class='a b'>",
        "</div>",
        "<script>",
        "</script>",
        "<br>",
        "<p>",
        "x",
        "Name",
        "é",
    ],
    "xml": [
        "<",
        ">",
        "</",
        "/>",
        "<r>",
        "</r>",
        "<a>",
        "</a>",
        '<b x="1">',
        "</b>",
        "<!--",
        "-->",
        "<![CDATA[",
        "]]>",
        "&amp;",
        "&#65;",
        "&x;",
        "x",
        " ",
        "\n",
        "=",
        '"',
        "<?xml version='1.0'?>",
        "<!DOCTYPE r>",
    ],
    "yaml": [
        "a",
        ": ",
        "- ",
        "\n",
        "  ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "&x ",
        "*x",
        "&y ",
        "*y",
        "<<: ",
        "? ",
        "!!str ",
        "!!int ",
        "!!binary ",
        "!x ",
        "'",
        '"',
        "|",
        ">",
        "#",
        "---\n",
        "...\n",
        "%YAML 1.1\n",
        "0x1F",
        "~",
        "1e3",
        ".inf",
        "true",
        "null",
        "\t",
        "é",
        "\\",
    ],
    "csv": [",", '"', "\n", "\r\n", "a", "b", "1", " ", "\t", "|", '""'],
    "markdown": [
        "#",
        " ",
        "\n",
        "\n\n",
        "*",
        "_",
        "`",
        "```",
        "~~~",
        "[",
        "]",
        "(",
        ")",
        "![",
        "<",
        ">",
        "<!--",
        "-->",
        "&amp;",
        "\\",
        "|",
        "-",
        "---",
        "===",
        "> ",
        "1. ",
        "- ",
        "    ",
        "<div>",
        "<b>",
        "</b>",
        "[x]: /u",
        "text",
        "é",
    ],
}
TOKENS["json"] = ["{", "}", "[", "]", '"', ":", ",", "1", "-", "e", "true", "null", " ", "\\u00"]


@pytest.mark.parametrize("fmt", sorted(TOKENS))
def test_random_token_soup_gives_data_or_a_format_error(fmt: str) -> None:
    @FUZZ
    @given(st.lists(st.sampled_from(TOKENS[fmt]), max_size=200).map("".join))
    def check(text: str) -> None:
        decoded_or_refused(text.encode(), fmt)
        decoded_or_refused((text * 2000).encode(), fmt)  # the same shape repeated, up to about 1 MB

    check()


@pytest.mark.parametrize("fmt", ["html", "xml", "yaml", "csv", "tsv", "markdown"])
def test_random_bytes_give_data_or_a_format_error(fmt: str) -> None:
    @FUZZ
    @given(st.binary(max_size=300), st.sampled_from([None, "utf-8", "latin-1", "utf-16"]))
    def check(body: bytes, charset: str | None) -> None:
        decoded_or_refused(body, fmt, encoding=charset)

    check()


# --------------------------------------------------------------- YAML: exactly what ruamel.yaml reads


class _Reference(SafeConstructor):
    """ruamel.yaml's safe constructor with the JSON shape the decoder promises (the old decoder)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        self.flatten_mapping(node)
        return {_key(self.construct_object(k, deep=True)): self.construct_object(v, deep=deep) for k, v in node.value}


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


_Reference.add_constructor("tag:yaml.org,2002:timestamp", lambda c, n: c.construct_scalar(n))
_Reference.add_constructor("tag:yaml.org,2002:binary", lambda c, n: "".join(c.construct_scalar(n).split()))
_Reference.add_constructor("tag:yaml.org,2002:set", SafeConstructor.construct_yaml_map)
_Reference.add_constructor("tag:yaml.org,2002:omap", SafeConstructor.construct_yaml_seq)
_Reference.add_constructor("tag:yaml.org,2002:pairs", SafeConstructor.construct_yaml_seq)


def ruamel_reads(text: str) -> Any:
    yaml = YAML(typ="safe", pure=True)
    yaml.Constructor = _Reference
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ruamel's advice on YAML 1.1 floats
        return next(iter(yaml.load_all(text)), None)


PLAIN = [
    "0x1F",
    "0o17",
    "017",
    "0b101",
    "1_000",
    "+12",
    "-0",
    "1.5",
    "1e3",
    "1.e-2",
    ".5",
    ".inf",
    "-.Inf",
    ".NaN",
    "~",
    "null",
    "Null",
    "true",
    "False",
    "TRUE",
    "yes",
    "no",
    "on",
    "2001-12-14",
    "2001-12-14 21:59:43.10 -5",
    "12:30:00",
    "1:30",
    "=",
    "0",
    "00",
    "09",
    "x",
    "a b",
    "é",
    "0x",
    "1_",
    "+.5",
    "-1e+5",
]
keys = st.text(alphabet=string.ascii_letters, min_size=1, max_size=6)
leaves = st.one_of(
    st.sampled_from(PLAIN),
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=False).map(repr),
    st.text(alphabet=string.ascii_letters + " -_.", max_size=8),
)


def block(value: Any, indent: int) -> str:
    pad = " " * indent
    if isinstance(value, dict):
        return (
            "".join(
                f"{pad}{k}:" + (f" {v}\n" if isinstance(v, str) else "\n" + block(v, indent + 2))
                for k, v in value.items()
            )
            or f"{pad}{{}}\n"
        )
    return (
        "".join(f"{pad}-" + (f" {v}\n" if isinstance(v, str) else "\n" + block(v, indent + 2)) for v in value)
        or f"{pad}[]\n"
    )


documents = st.recursive(
    st.dictionaries(keys, leaves, min_size=1, max_size=4),
    lambda inner: st.one_of(
        st.dictionaries(keys, inner | leaves, min_size=1, max_size=4), st.lists(inner | leaves, min_size=1, max_size=4)
    ),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@FUZZ
@given(documents, st.booleans())
def test_yaml_reads_exactly_what_ruamel_reads(document: Any, version_11: bool) -> None:
    text = ("%YAML 1.1\n---\n" if version_11 else "") + block(document, 0)
    try:
        expected = ruamel_reads(text)
    except Exception:  # noqa: BLE001 - ruamel refuses it (or crashes on it): ours must refuse it cleanly
        assert isinstance(decoded_or_refused(text.encode(), "yaml"), FormatError)
        return
    assert same(decode(text.encode(), "yaml"), expected), text


@FUZZ
@given(
    st.lists(
        st.sampled_from(
            [
                "a: &x [1, 2]\n",
                "b: *x\n",
                "c: &y {p: 1, q: *x}\n",
                "d:\n  <<: *y\n  q: 3\n",
                "e: [*x, *x]\n",
                "f: {<<: [*y], r: 1}\n",
                "g: !!str 12\n",
                "h: !!float 1\n",
                "i: 'it''s'\n",
                'j: "\\u00e9\\n"\n',
                "k: |\n  line\n",
                "l: >-\n  fold\n  ed\n",
                "m: !!set {a, b}\n",
                "n: !!omap [{a: 1}]\n",
                "? [1, 2]\n: o\n",
            ]
        ),
        min_size=1,
    )
)
def test_yaml_anchors_merges_and_tags_read_as_ruamel_reads_them(lines: list[str]) -> None:
    text = "".join(lines)
    try:
        expected = ruamel_reads(text)
    except Exception:  # noqa: BLE001 - an alias before its anchor, a repeated merge key...
        assert isinstance(decoded_or_refused(text.encode(), "yaml"), FormatError)
        return
    assert same(decode(text.encode(), "yaml"), _json_keys(expected)), text


def _json_keys(value: Any) -> Any:
    """ruamel's list keys (`? [1, 2]`) as the decoder writes them: their JSON text."""
    if isinstance(value, dict):
        return {k: _json_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_keys(v) for v in value]
    return value


# --------------------------------------------------------------- through a served capability

SERVED = """\
naftiko: 1.0.0-alpha2
capability:
  exposes:
    - type: rest
      namespace: docs-rest
      port: 8080  # replaced by --port docs-rest=0
      resources:
        - path: /config
          operations:
            - {method: GET, call: docs.get-config}
        - path: /catalog
          operations:
            - {method: GET, call: docs.get-catalog}
        - path: /ping
          operations:
            - method: GET
              outputParameters:
                - {name: pong, type: string, value: "yes"}
  consumes:
    - type: http
      namespace: docs
      baseUri: http://localhost:1
      resources:
        - name: config
          path: /config.yaml
          operations:
            - {name: get-config, method: GET, outputRawFormat: yaml}
        - name: catalog
          path: /catalog.xml
          operations:
            - {name: get-catalog, method: GET, outputRawFormat: xml}
"""


@pytest.fixture
def served(tmp_path: Path, upstream: RecordingUpstream, naftiko: Callable[..., Any]) -> Iterator[str]:
    path = tmp_path / "capability.yaml"
    path.write_text(textwrap.dedent(SERVED))
    process = naftiko(str(path), "--base-uri", f"docs={upstream.url}", "--port", "docs-rest=0")
    yield process.wait_for("docs-rest")["docs-rest"]


def test_an_alias_bomb_upstream_is_a_502_naming_the_limit(served: str, upstream: RecordingUpstream) -> None:
    upstream.reply("GET", "/config.yaml", Reply(content_type="application/yaml", body=bomb(9).encode()))
    started = time.perf_counter()
    answer = httpx.get(f"{served}/config", timeout=30)
    assert time.perf_counter() - started < BOUND
    assert answer.status_code == 502
    message = answer.json()["error"]["message"]
    assert "upstream docs (get-config)" in message and "more than 1,000,000 values" in message
    assert "decoded-items" in message and "NAFTIKO_MAX_DECODED_ITEMS" in message
    upstream.reply("GET", "/config.yaml", Reply(content_type="application/yaml", body=b"a: &a [1, *a]\n"))
    answer = httpx.get(f"{served}/config", timeout=30)
    assert answer.status_code == 502 and "refers to a collection that contains it" in answer.json()["error"]["message"]


def test_the_loop_answers_while_a_big_body_decodes(served: str, upstream: RecordingUpstream) -> None:
    items = "".join(f"<item id='{i}'><name>Item number {i}</name><tag>t{i % 7}</tag></item>" for i in range(80_000))
    body = f"<catalog>{items}</catalog>".encode()
    assert len(body) > 5 * 1000 * 1000
    upstream.reply("GET", "/catalog.xml", Reply(content_type="application/xml", body=body))

    async def scenario() -> tuple[float, float, list[float]]:
        async with httpx.AsyncClient(timeout=60) as client:
            started = time.perf_counter()
            big = asyncio.create_task(client.get(f"{served}/catalog"))
            pings: list[float] = []
            while not big.done():
                sent = time.perf_counter()
                answer = await client.get(f"{served}/ping")
                assert answer.json() == {"pong": "yes"}
                if not big.done():
                    pings.append(time.perf_counter() - sent)
                await asyncio.sleep(0.02)
            catalog = await big
            assert catalog.status_code == 200 and len(catalog.json()["item"]) == 80_000
            return time.perf_counter() - started, max(pings, default=0.0), pings

    total, slowest, pings = asyncio.run(scenario())
    # the big call takes a while; pings sent meanwhile are answered without waiting for it
    assert len(pings) >= 3, f"only {len(pings)} pings while the big body took {total:.2f} s"
    assert slowest < total / 2, f"a ping waited {slowest:.2f} s of the big call's {total:.2f} s"

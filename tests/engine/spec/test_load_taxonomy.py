"""A closed error taxonomy at load time: every problem a capability file can have is a
CapabilityError with file, line, column and key path, found by `validate` (so `serve` never
finds a new one), and no builtin exception escapes loading or building the runtime."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import httpx
import pytest
from ruamel.yaml import YAML

from naftiko.adapters import exposes_app
from naftiko.engine import CapabilityError, Runtime, load_capabilities
from naftiko.engine.runtime import MAX_REF_DEPTH
from tests.support import ROOT, RecordingUpstream

BASE = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: up
      baseUri: https://api.example.com
      resources:
        - name: users
          path: /users/{{id}}
          operations:
            - name: get-user
              method: GET
              inputParameters:
                - {name: id, in: path}
                - {name: q, in: query, value: "{{tag}}"}
            - name: put-user
              method: PUT
              body: {type: json, data: {name: "{{name}}"}}
  exposes:
    - type: mcp
      namespace: m
      port: 9000
      tools:
        - name: t
          description: a tool
          call: up.get-user
          with:
            id: "{{who}}"
          outputParameters:
            - type: string
              mapping: $.name
  aggregates:
    - label: Agg
      namespace: a
      functions:
        - name: f
          description: f
          call: up.get-user
"""


def check(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    """What `validate` would print: loading, then building the runtime without its environment."""
    path = check(tmp_path, text)
    with pytest.raises(CapabilityError) as caught:
        Runtime(load_capabilities([path]), resolve_environment=False)
    for problem in caught.value.problems:
        assert problem.location.line > 0 and problem.location.column > 0 and problem.location.path, str(problem)
    return [str(p).replace(f"{path}:", "") for p in caught.value.problems]


def written_at(text: str, problem: str) -> str:
    """The text of the file from the line and column a problem names, to the end of that line."""
    line, column = (int(n) for n in problem.split(":")[:2])
    return textwrap.dedent(text).splitlines()[line - 1][column - 1 :]


def ok(tmp_path: Path, text: str) -> Runtime:
    return Runtime(load_capabilities([check(tmp_path, text)]), resolve_environment=False)


# --- templates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,message",
    [
        ("{{#items}}{{name}}", "'{{#items}}' at character 1 is never closed; add '{{/items}}'"),
        ("{{/a}}", "'{{/a}}' at character 1 closes a section that was never opened"),
        ("{{#a}}x{{/b}}", "'{{/b}}' at character 8 closes '{{#a}}' (opened at character 1); write '{{/a}}'"),
    ],
)
def test_validate_names_a_broken_template_without_a_traceback(tmp_path: Path, value: str, message: str) -> None:
    """Issue 12: these printed a traceback (or, for the mismatch, said ok)."""
    text = BASE.replace("type: string\n              mapping: $.name", f'type: string\n              value: "{value}"')
    path = check(tmp_path, text)
    result = subprocess.run(
        [sys.executable, "-m", "naftiko", "validate", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    problem = result.stderr.strip().removeprefix(f"{path}:")
    where = "capability.exposes[0].tools[0].outputParameters[0].value"
    assert problem.endswith(f": invalid template: {message} (at {where})")
    assert written_at(text, problem) == f'"{value}"', "line and column of the value itself"


@pytest.mark.parametrize(
    "old,new,message,key_path",
    [
        (
            'value: "{{tag}}"',
            '"{{#tag}}"',
            "'{{#tag}}' at character 1 is never closed; add '{{/tag}}'",
            "capability.consumes[0].resources[0].operations[0].inputParameters[1].value",
        ),
        (
            '"{{name}}"',
            '"{{/name}}"',
            "'{{/name}}' at character 1 closes a section that was never opened",
            "capability.consumes[0].resources[0].operations[1].body.data.name",
        ),
        (
            "/users/{{id}}",
            "/users/{{#id}}x{{/id}}",
            "a path cannot hold Mustache sections ('{{#id}}'): each path value is encoded as one segment",
            "capability.consumes[0].resources[0].path",
        ),
        (
            '"{{who}}"',
            '"{{#w}}{{/who}}"',
            "'{{/who}}' at character 7 closes '{{#w}}' (opened at character 1); write '{{/w}}'",
            "capability.exposes[0].tools[0].with.id",
        ),
    ],
)
def test_template_problems_point_at_the_value(tmp_path: Path, old: str, new: str, message: str, key_path: str) -> None:
    text = BASE.replace(old, new if not old.startswith("value: ") else f"value: {new}")
    [problem] = problems(tmp_path, text)
    assert problem.split(": ", 1)[1] == f"invalid template: {message} (at {key_path})"
    assert written_at(text, problem).startswith(new)


def test_templates_in_auth_steps_and_lookups_are_checked(tmp_path: Path) -> None:
    text = BASE.replace(
        "      baseUri: https://api.example.com\n",
        '      baseUri: https://api.example.com\n      authentication: {type: bearer, token: "{{#k}}"}\n',
    )
    text = text.replace(
        "        - name: f\n          description: f\n          call: up.get-user\n",
        """\
        - name: f
          description: f
          steps:
            - {type: call, name: one, call: up.get-user, with: {id: "{{^x}}"}}
            - {type: lookup, name: two, index: one, match: id, lookupValue: "{{#v}}", outputParameters: [id]}
""",
    )
    found = problems(tmp_path, text)
    assert [written_at(text, p)[:7] for p in found] == ['"{{#k}}', '"{{^x}}', '"{{#v}}']
    assert [p.rsplit("(at ", 1)[1] for p in found] == [
        "capability.consumes[0].authentication.token)",
        "capability.aggregates[0].functions[0].steps[0].with.id)",
        "capability.aggregates[0].functions[0].steps[1].lookupValue)",
    ]


# --- ref cycles ----------------------------------------------------------------------------------


def _functions(*refs: tuple[str, str]) -> str:
    functions = "".join(f"        - {{name: {name}, description: d, ref: {ref}}}\n" for name, ref in refs)
    return BASE.replace(
        "        - name: f\n          description: f\n          call: up.get-user\n",
        "        - name: f\n          description: f\n          call: up.get-user\n" + functions,
    )


_REST_REF = """\
    - type: rest
      namespace: r
      port: 9001
      resources:
        - path: /g
          operations:
            - {method: GET, ref: a.g}
"""


@pytest.mark.parametrize(
    "refs,cycle",
    [
        ((("g", "a.g"),), "a.g → a.g"),
        ((("g", "a.h"), ("h", "a.g")), "a.g → a.h → a.g"),
        ((("g", "a.h"), ("h", "a.i"), ("i", "a.g")), "a.g → a.h → a.i → a.g"),
    ],
)
def test_ref_cycles_of_any_length_name_the_cycle(tmp_path: Path, refs: tuple[tuple[str, str], ...], cycle: str) -> None:
    """Issue 12: a function whose ref names itself took validate down with RecursionError."""
    text = _functions(*refs).replace("  aggregates:", _REST_REF + "  aggregates:")
    lines = text.splitlines()
    closing = next(i for i, line in enumerate(lines) if f"{{name: {refs[-1][0]}," in line)
    column = lines[closing].index("ref: ") + len("ref: ") + 1
    assert problems(tmp_path, text) == [
        f"{closing + 1}:{column}: ref cycle: {cycle}; a function cannot reach itself"
        f" through ref (at capability.aggregates[0].functions[{len(refs)}].ref)"
    ]


def test_long_ref_chains_are_bounded(tmp_path: Path) -> None:
    count = MAX_REF_DEPTH + 4
    refs = [(f"g{i}", f"a.g{i + 1}") for i in range(count)] + [(f"g{count}", "a.f")]
    found = problems(tmp_path, _functions(*refs))
    assert len(found) == 1 and f"reaches {count + 2} functions; at most {MAX_REF_DEPTH}" in found[0]
    assert "ref chain a.g0 → a.g1 → a.g2 → …" in found[0]
    ok(tmp_path, _functions(*refs[-MAX_REF_DEPTH + 1 :]))


# --- routes and names ---------------------------------------------------------------------------

ROUTES = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: up
      baseUri: https://api.example.com
      resources:
        - {name: one, path: "/one/{{v}}", operations: [{name: one, method: GET}]}
        - {name: two, path: "/two/{{v}}", operations: [{name: two, method: GET}, {name: del, method: DELETE}]}
  exposes:
    - type: rest
      namespace: r
      port: 9001
      resources:
        - path: /a/{id}
          operations:
            - {method: GET, call: up.one, with: {v: "{{id}}"}}
        - path: /a/{key}/b
          operations:
            - {method: GET, call: up.two, with: {v: "{{key}}"}}
        - path: /c/{{first}}
          operations:
            - {method: GET, call: up.one, with: {v: "{{first}}"}}
        - path: /c/{second}/
          operations:
            - {method: DELETE, call: up.del, with: {v: "{{second}}"}}
"""


def test_the_router_holds_variables_of_different_names(tmp_path: Path, upstream: RecordingUpstream, naftiko) -> None:
    """Issue 12: validate said ok for `/a/{id}` and `/a/{key}/b`, then serve crashed."""
    path = check(tmp_path, ROUTES)
    url = naftiko(str(path), "--base-uri", f"up={upstream.url}", "--port", "r=0").wait_for("r")["r"]
    for method, route, seen in [
        ("GET", "/a/1", "/one/1"),
        ("GET", "/a/2/b", "/two/2"),
        ("GET", "/c/3", "/one/3"),
        ("DELETE", "/c/4", "/two/4"),
    ]:
        assert httpx.request(method, url + route).status_code == 200
        assert (upstream.last.method, upstream.last.path) == (method, seen)
    assert httpx.get(url + "/a").status_code == 404


def message(problem: str) -> str:
    """A problem without its leading line:column; positions inside the message become L:C."""
    return re.sub(r"\b\d+:\d+\b", "L:C", problem.split(": ", 1)[1])


@pytest.mark.parametrize(
    "old,new,expected,written",
    [
        (
            "        - path: /c/{second}/\n          operations:\n            - {method: DELETE",
            "        - path: /c/{second}/\n          operations:\n            - {method: GET",
            "GET /c/{second}/ is already declared at L:C (/c/{{first}},"
            " capability.exposes[0].resources[2].operations[0]); the router cannot tell them apart"
            " (variable names do not count) (at capability.exposes[0].resources[3].operations[0])",
            "{method: GET, call: up.del",
        ),
        (
            "            - {method: GET, call: up.two",
            "            - {method: GET, call: up.one, name: x}\n            - {method: GET, call: up.two",
            "GET /a/{key}/b is already declared at L:C (/a/{key}/b,"
            " capability.exposes[0].resources[1].operations[0]); the router cannot tell them apart"
            " (variable names do not count) (at capability.exposes[0].resources[1].operations[1])",
            "{method: GET, call: up.two",
        ),
        (
            "        - path: /a/{id}\n",
            "        - path: /a/v{id}\n",
            "path segment 'v{id}' mixes text and braces; routes match whole segments, so a variable is a segment of"
            " its own ('{name}' or '{{name}}', names of letters, digits, '_', '-', '.')"
            " (at capability.exposes[0].resources[0].path)",
            "/a/v{id}",
        ),
    ],
)
def test_route_problems(tmp_path: Path, old: str, new: str, expected: str, written: str) -> None:
    text = ROUTES.replace(old, new)
    [problem] = problems(tmp_path, text)
    assert message(problem) == expected
    assert written_at(text, problem).startswith(written)


MCP_NAMES = """\
naftiko: 1.0.0-alpha2
capability:
  aggregates:
    - label: A
      namespace: a
      functions:
        - {name: hello, description: d, outputParameters: [{name: m, type: string, value: hi}]}
  exposes:
    - type: mcp
      namespace: m
      port: 9000
      tools:
        - {name: hello, description: d, outputParameters: [{name: m, type: string, value: hi}]}
        - {name: other, description: d, ref: a.hello}
      resources:
        - {name: r1, uri: "data://x", location: "file:///tmp"}
        - {name: r2, uri: "data://x", location: "file:///tmp"}
      prompts:
        - {name: p, template: [{role: user, content: hi}]}
        - {name: p, template: [{role: user, content: hi}]}
"""


def test_duplicate_tools_resources_and_prompts(tmp_path: Path) -> None:
    text = MCP_NAMES.replace(
        "{name: other, description: d, ref: a.hello}", "{name: hello, description: d, ref: a.hello}"
    )
    found = problems(tmp_path, text)
    assert [message(p) for p in found] == [
        "tool 'hello' is already declared at L:C (capability.exposes[0].tools[0].name); tools of one block must be"
        " unique (at capability.exposes[0].tools[1].name)",
        "resource URI 'data://x' is already declared at L:C (capability.exposes[0].resources[0].uri); resource URIs of"
        " one block must be unique (at capability.exposes[0].resources[1].uri)",
        "prompt 'p' is already declared at L:C (capability.exposes[0].prompts[0].name); prompts of one block must be"
        " unique (at capability.exposes[0].prompts[1].name)",
    ]
    assert [written_at(text, p)[:10] for p in found] == ["{name: hel", "{name: r2,", "{name: p, "]
    derived = MCP_NAMES.replace("{name: other, description: d, ref: a.hello}", "{description: d, ref: a.hello}")
    derived = derived.replace('r2, uri: "data://x"', 'r2, uri: "data://y"').replace(
        "        - {name: p, template: [{role: user, content: hi}]}\n", "", 1
    )
    [problem] = problems(tmp_path, derived)
    assert message(problem) == (
        "tool 'hello' (its name comes from ref 'a.hello') is already declared at L:C"
        " (capability.exposes[0].tools[0]); tool names of one MCP block must be unique"
        " (at capability.exposes[0].tools[1])"
    )
    assert written_at(derived, problem).startswith("{description: d, ref: a.hello}")


# --- other crash paths of the build functions ------------------------------------------------------


@pytest.mark.parametrize(
    "old,new,expected,written",
    [
        (
            "              mapping: $.name",
            "              mapping: $.[broken",
            "invalid JSONPath '$.[broken'",
            "type: string",
        ),
        (
            "                - {name: id, in: path}",
            "                - {name: id, in: path, pattern: '[a-'}",
            "'pattern' is not a valid regular expression: unterminated character set",
            "'[a-'",
        ),
        (
            "  aggregates:",
            "    - {type: rest, namespace: r, port: 1,"
            " authentication: {type: digest, username: u, password: p}, resources: []}\n  aggregates:",
            "digest authentication of exposed servers is not supported yet",
            "digest,",
        ),
        (
            "  aggregates:",
            "    - type: rest\n      namespace: r\n      port: 1\n      resources:\n"
            "        - {path: '/f/{path}', forward: {targetNamespace: nowhere, trustedHeaders: [x]}}\n  aggregates:",
            "forward target 'nowhere' is not a consumes namespace (known: up)",
            "forward: {targetNamespace: nowhere",
        ),
        (
            "  aggregates:",
            "    - type: rest\n      namespace: r\n      port: 1\n      resources:\n"
            "        - {path: '/f/{path}', forward: {targetNamespace: up, trustedHeaders: 5}}\n  aggregates:",
            "'trustedHeaders' must be a list of strings; got int 5",
            "5}}",
        ),
        (
            "        - name: f\n          description: f\n          call: up.get-user\n",
            "        - name: f\n          description: f\n          steps:\n"
            "            - {type: call, name: s, call: up.get-user}\n"
            "            - {type: lookup, name: l, index: s, match: id, lookupValue: $.s.id, outputParameters: 5}\n",
            "'outputParameters' must be a list of strings; got int 5",
            "5}",
        ),
        (
            "        - name: f\n          description: f\n          call: up.get-user\n",
            "        - name: f\n          description: f\n          steps:\n"
            "            - {type: call, name: s, call: up.get-user}\n"
            "          mappings:\n            - {targetName: a, value: $.s.x}\n"
            "            - {targetName: a.b, value: $.s.y}\n",
            "'targetName' 'a.b' puts a field inside 'a', which another mapping sets as a whole value at L:C",
            "{targetName: a.b",
        ),
        (
            '              body: {type: json, data: {name: "{{name}}"}}',
            "              body: {type: multipartForm, data: 5}",
            "a multipartForm body's 'data' must be a list of parts; got int 5",
            "5}",
        ),
        (
            "      port: 9000\n",
            "      port: 9000\n      resources:\n        - {name: r, uri: 'data://{a-b}/{a_b}', call: up.get-user}\n",
            "'uri' names a variable twice (a_b; '-' and '_' count as the same): each needs its own name",
            "'data://{a-b}",
        ),
    ],
)
def test_other_build_problems(tmp_path: Path, old: str, new: str, expected: str, written: str) -> None:
    text = BASE.replace(old, new)
    assert text != BASE
    [problem] = problems(tmp_path, text)
    assert message(problem).startswith(expected)
    assert written_at(text, problem).startswith(written)


def test_consumed_apikey_in_a_cookie_and_required_lists_are_accepted(tmp_path: Path) -> None:
    """Forms the reference engine's serializer writes (OpenAPI import: apiKey `in: cookie`; JSON
    Schema's `required: [..]` on a parameter with properties)."""
    text = BASE.replace(
        "      baseUri: https://api.example.com\n",
        "      baseUri: https://api.example.com\n"
        "      authentication: {type: apikey, key: sid, value: v, placement: cookie}\n",
    )
    text = text.replace("- {name: id, in: path}", "- {name: id, in: path, required: [a, b]}")
    runtime = ok(tmp_path, text)
    prepared = runtime.registry.get("up.get-user").prepare({"id": "7", "tag": "x"}, {}, runtime.prefixes)
    assert ("Cookie", "sid=v") in prepared.headers


def test_consumed_output_jsonpath_used_by_a_step(tmp_path: Path) -> None:
    text = BASE.replace(
        "            - name: put-user\n",
        "              outputParameters:\n"
        "                - {name: n, type: string, value: '$.[x'}\n            - name: put-user\n",
    )
    text = text.replace(
        "          call: up.get-user\n  ",
        "          steps:\n            - {type: call, name: s, call: up.get-user}\n  ",
        1,
    )
    text = text.replace(
        "        - name: f\n          description: f\n          call: up.get-user\n",
        "        - name: f\n          description: f\n          steps:\n"
        "            - {type: call, name: s, call: up.get-user}\n",
    )
    found = problems(tmp_path, text)
    assert found and all("invalid JSONPath '$.[x'" in p and ".outputParameters[0].value)" in p for p in found)


# --- no builtin exception escapes: every node of a rich file swapped or deleted -------------------

RICH = ROOT / "tests" / "data" / "taxonomy-rich.yaml"
_REPLACEMENTS: list[Any] = [
    None,
    0,
    -7,
    10**30,
    1.5,
    True,
    "",
    "x",
    "{{#a}}",
    "{{/a}}",
    "{{#a}}{{/b}}",
    "$.[",
    "/v{a}/{b}{c}",
    "{a}",
    "[a-",
    "\u202e\x07é",
    [],
    [1, "a"],
    [{}],
    {},
    {"a": {"b": 1}},
]


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _nodes(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nodes(item, path + (index,))


def _mutated(document: Any, path: tuple[Any, ...], replacement: Any, *, delete: bool = False) -> str:
    copied = copy.deepcopy(document)
    node = copied
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = copy.deepcopy(replacement)
    return "\n".join(_emit(copied, "")) + "\n"


def _emit(value: Any, indent: str) -> list[str]:
    """Block YAML the fast reader takes (scalars as JSON, which YAML reads the same)."""
    lines: list[str] = []
    items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
    for key, item in items:
        head = f"{indent}{key}:" if key is not None else f"{indent}-"
        if isinstance(item, (dict, list)) and item:
            if key is None:
                sub = _emit(item, indent + "  ")
                lines += [f"{head} {sub[0].lstrip()}", *sub[1:]]
            else:
                lines += [head, *_emit(item, indent + "  ")]
        else:
            scalar = "[]" if item == [] else "{}" if item == {} else json.dumps(item, ensure_ascii=False)
            lines.append(f"{head} {scalar}")
    return lines


def _load_and_build(path: Path, apps: bool) -> None:
    """What validate does, then what serve builds (apps of every served block)."""
    runtime = Runtime(load_capabilities([path]), resolve_environment=False)
    for exposes in runtime.exposes if apps else ():
        if exposes.type in ("rest", "mcp", "skill") and exposes.authentication is None:
            exposes_app(runtime, exposes.namespace)


def test_every_swap_or_deletion_is_a_positioned_capability_error(tmp_path: Path) -> None:
    """Each node of a file using every builder, replaced by values of the wrong type, broken
    templates, paths and patterns, or deleted: loading and building either work or raise a
    CapabilityError whose every problem has a position, and building the served apps then never fails."""
    document = YAML(typ="safe", pure=True).load(RICH.read_text())
    assert _mutated(document, ("naftiko",), "1.0.0-alpha2") and Runtime(
        load_capabilities([RICH]), resolve_environment=False
    )
    paths = [p for p in _nodes(document) if p]
    started = time.monotonic()
    cases = failures = 0
    file = tmp_path / "mutated.yaml"
    for index, node_path in enumerate(paths):
        variants = [(_REPLACEMENTS[(index * 5 + j) % len(_REPLACEMENTS)], False) for j in range(5)] + [(None, True)]
        for replacement, delete in variants:
            file.write_text(_mutated(document, node_path, replacement, delete=delete))
            cases += 1
            try:
                _load_and_build(file, apps=cases % 5 == 0)
            except CapabilityError as exc:
                failures += 1
                for problem in exc.problems:
                    assert problem.location.line > 0 and problem.location.path, (node_path, replacement, str(problem))
            except Exception as exc:  # pragma: no cover - the failure message is the point
                raise AssertionError(f"{node_path} = {replacement!r} (deleted: {delete}): {exc!r}") from exc
    assert cases > 1500 and failures > cases // 3, (cases, failures)
    assert time.monotonic() - started < 60, "hang guard"

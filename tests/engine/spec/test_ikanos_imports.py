"""Shared (leaf) files and the imports of their entries: `consumes`, `exposes`, `aggregates`, `binds`.

A document with `ikanos:` (or `naftiko:`) and one root section but no `capability` is a shared file: it is
checked on its own as fully as a capability, never served, and a capability imports single entries from
it with `{from, import, as, description}`. Every failure of an import is a positioned problem at the
importing file's key that names the imported file; problems inside the imported file keep its own lines.
The Ikanos engine's own import fixtures are read from ../shared (skipped cleanly when absent); our own
files are in tests/data/ikanos/imports.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from naftiko.engine import (
    CapabilityError,
    McpExposes,
    ReadLimits,
    RestExposes,
    Runtime,
    convert_text,
    load_capabilities,
    load_documents,
)
from naftiko.engine.spec import Aggregate, Binding, Consumes

from tests.support import ROOT, SHARED, shared_or_skip, spec_shape

DATA = ROOT / "tests" / "data" / "ikanos" / "imports"
WEATHER = DATA / "weather.ikanos.yaml"
FIXTURES = SHARED / "spec" / "ikanos" / "fixtures" / "imports"

VALID = {  # each shared file of the Ikanos engine's fixtures: its kind and the namespaces it holds
    "aggregates/shared.aggregates.yml": ("aggregates", ("forecast", "geo")),
    "binds/shared.binds.yml": ("binds", ("weather-secrets", "geo-secrets")),
    "consumes/shared-clients.yml": ("consumes", ("weather-http", "geo-http")),
    "consumes/shared.consumes.yml": ("consumes", ("weather-api", "geo-api")),
    "exposes/shared-servers.yml": ("exposes", ("weather-rest", "weather-mcp")),
}
INVALID = {  # and the broken ones, with the place (line, column, key path) each problem must name
    "invalid/empty-section.consumes.yml": [(2, 11, "consumes")],
    "invalid/malformed.yml": [(2, 11, "")],
    # its calls say `weather-api.forecasts.get-forecast`; the beta5 schema's pattern is `{namespace}.{operationId}`
    "exposes/shared.exposes.yml": [
        (13, 19, "exposes[0].resources[0].operations[0].call"),
        (21, 15, "exposes[1].tools[0].call"),
    ],
}


def _fixtures() -> Path:
    return shared_or_skip(FIXTURES)


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def _line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def _problems(paths: list[Path]) -> list[str]:
    with pytest.raises(CapabilityError) as raised:
        load_capabilities(paths)
    return [str(p) for p in raised.value.problems]


# --- the Ikanos engine's fixtures -------------------------------------------------------------------


def test_every_fixture_is_accounted_for() -> None:
    found = {str(p.relative_to(_fixtures())) for p in _fixtures().rglob("*") if p.is_file()}
    assert found == set(VALID) | set(INVALID)


@pytest.mark.parametrize("name", sorted(VALID))
def test_a_shared_fixture_checks_on_its_own(name: str) -> None:
    capabilities, (shared,) = load_documents([_fixtures() / name])
    assert capabilities == []
    kind, namespaces = VALID[name]
    assert (shared.kind, tuple(e.namespace for e in shared.entries), shared.warnings) == (kind, namespaces, ())
    assert (shared.where.line, shared.where.path) == (2, kind)
    with pytest.raises(CapabilityError, match=f"shared {kind} file: 2 entries .*nothing to serve on its own"):
        load_capabilities([_fixtures() / name])


@pytest.mark.parametrize("name", sorted(INVALID))
def test_a_broken_fixture_is_a_positioned_problem(name: str) -> None:
    with pytest.raises(CapabilityError) as raised:
        load_documents([_fixtures() / name])
    places = [(p.location.line, p.location.column, p.location.path) for p in raised.value.problems]
    assert places == INVALID[name]
    assert all(p.location.file == str(_fixtures() / name) for p in raised.value.problems)


def test_the_fixture_folders_validate_their_shared_files_and_serve_none() -> None:
    capabilities, shared = load_documents([_fixtures() / "aggregates", _fixtures() / "binds"])
    assert capabilities == [] and [s.kind for s in shared] == ["aggregates", "binds"]
    with pytest.raises(CapabilityError, match="no capability files found"):
        load_capabilities([_fixtures() / "aggregates"])


def test_a_capability_imports_an_entry_of_each_fixture_kind(tmp_path: Path) -> None:
    fixtures = _fixtures()
    capability = _write(
        tmp_path,
        "weather.yml",
        f"""\
        ikanos: "1.0.0-beta5"
        binds:
          - from: {fixtures}/binds/shared.binds.yml
            import: geo-secrets
        capability:
          consumes:
            - from: {fixtures}/consumes/shared.consumes.yml
              import: weather-api
            - from: {fixtures}/consumes/shared.consumes.yml
              import: geo-api
          aggregates:
            - from: {fixtures}/aggregates/shared.aggregates.yml
              import: forecast
              as: weather
              description: the forecast domain, renamed here
          exposes:
            - from: {fixtures}/exposes/shared-servers.yml
              import: weather-rest
            - from: {fixtures}/exposes/shared-servers.yml
              import: weather-mcp
        """,
    )
    (loaded,) = load_capabilities([capability])
    assert [c.namespace for c in loaded.consumes] == ["weather-api", "geo-api"]
    assert [(a.namespace, a.label) for a in loaded.aggregates] == [("weather", "Forecast Domain")]
    assert [(b.namespace, b.keys) for b in loaded.binds] == [("geo-secrets", {"GEO_API_KEY": "geo-api-key"})]
    rest, mcp = loaded.exposes
    assert isinstance(rest, RestExposes) and (rest.namespace, rest.port, rest.address) == (
        "weather-rest",
        8080,
        "localhost",
    )
    assert isinstance(mcp, McpExposes) and (mcp.port, mcp.tools[0].invocation.call) == (
        3000,
        "weather-api.get-forecast",
    )
    assert rest.where.file == str(fixtures / "exposes" / "shared-servers.yml")  # its problems name its own file
    assert [(i.kind, i.import_, i.as_) for i in loaded.imports] == [  # in the order the sections are read
        ("consumes", "weather-api", None),
        ("consumes", "geo-api", None),
        ("binds", "geo-secrets", None),
        ("exposes", "weather-rest", None),
        ("exposes", "weather-mcp", None),
        ("aggregates", "forecast", "weather"),
    ]
    assert loaded.imports[-1].description == "the forecast domain, renamed here"
    Runtime([loaded], resolve_environment=False)  # every call resolves against the imported consumes


# --- our own files ------------------------------------------------------------------------------------


def test_our_capability_imports_an_exposes_an_aggregate_and_a_bind() -> None:
    (loaded,) = load_capabilities([WEATHER])
    shared = DATA / "shared"
    rest, mcp = loaded.exposes
    assert isinstance(rest, RestExposes) and (rest.namespace, rest.port) == ("forecast-rest", 9410)
    assert rest.resources[0].path == "/forecast/{city}"
    assert isinstance(mcp, McpExposes) and mcp.tools[0].invocation.ref == "forecast.get-forecast"
    assert rest.where.file == str(shared / "weather.exposes.yml")
    (aggregate,) = loaded.aggregates
    assert isinstance(aggregate, Aggregate) and aggregate.functions[0].name == "get-forecast"
    (binding,) = loaded.binds
    assert isinstance(binding, Binding) and binding.namespace == "weather-keys"
    assert binding.location == "file://" + str((shared / "weather-secrets.yaml").resolve())  # next to its file
    assert {i.kind for i in loaded.imports} == {"binds", "aggregates", "exposes"}
    runtime = Runtime([loaded])  # bindings resolved: the token is read from the file next to the binds file
    assert runtime.exposes


def test_a_folder_serves_the_capability_and_validates_the_shared_files_too(tmp_path: Path) -> None:
    for path in [WEATHER, *sorted((DATA / "shared").iterdir())]:
        target = tmp_path / path.name
        target.write_text(path.read_text().replace("./shared/", "./"))
    (capability,) = load_capabilities([tmp_path])
    assert capability.path == str(tmp_path / "weather.ikanos.yaml")
    capabilities, shared = load_documents([tmp_path])
    assert [c.path for c in capabilities] == [capability.path]
    assert sorted(s.kind for s in shared) == ["aggregates", "binds", "exposes"]


def test_the_same_imports_in_the_alpha2_dialect(tmp_path: Path) -> None:
    """alpha2 spells `from` as `location`; a binds import is told from a binding by its `import`."""
    for path in (DATA / "shared").iterdir():
        if path.suffix == ".yml":
            _write(tmp_path, f"shared/{path.name}", convert_text(path.read_text(), "naftiko"))
        else:
            _write(tmp_path, f"shared/{path.name}", path.read_text())
    converted = convert_text(WEATHER.read_text(), "naftiko")
    assert "location: ./shared/weather.binds.yml" in converted and "from:" not in converted
    alpha2 = _write(tmp_path, "weather.yaml", converted)
    (loaded,) = load_capabilities([alpha2])
    (original,) = load_capabilities([WEATHER])
    assert [e.namespace for e in loaded.exposes] == ["forecast-rest", "weather-mcp"]
    assert spec_shape(loaded.exposes) == spec_shape(original.exposes)
    assert spec_shape(loaded.aggregates) == spec_shape(original.aggregates)
    assert loaded.binds[0].namespace == "weather-keys"


@pytest.mark.parametrize("name", ["weather.exposes.yml", "forecast.aggregates.yml", "weather.binds.yml"])
def test_convert_a_shared_file_both_ways(name: str, tmp_path: Path) -> None:
    source = DATA / "shared" / name
    naftiko = convert_text(source.read_text(), "naftiko")
    assert naftiko.startswith(("# ", 'naftiko: "1.0.0-alpha2"')) and "ikanos" not in naftiko
    back = convert_text(naftiko, "ikanos")
    shapes = []
    for dialect, text in [("naftiko", naftiko), ("ikanos", back)]:
        _, (shared,) = load_documents([_write(tmp_path, f"{dialect}/{name}", text)])
        shapes.append(spec_shape(shared.entries))
    _, (original,) = load_documents([source])
    assert shapes == [spec_shape(original.entries)] * 2
    assert back.splitlines()[0] == naftiko.splitlines()[0]  # the comment kept


# --- what goes wrong, and where it is said ------------------------------------------------------------

IMPORTER = """\
ikanos: "1.0.0-beta5"
capability:
  consumes:
    - type: http
      namespace: weather-api
      baseUri: http://localhost:1
      resources:
        forecasts:
          path: /forecasts/{{{{city}}}}
          operations:
            get-forecast: {{method: GET}}
  exposes:
    - from: {source}
      import: {name}
{extra}"""

LEAF = """\
ikanos: "1.0.0-beta5"
exposes:
  - type: rest
    namespace: weather-rest
    port: 9410
    resources:
      - path: /forecast
        operations:
          - method: GET
            call: weather-api.get-forecast
"""


def _importer(tmp_path: Path, source: str = "./leaf.yml", name: str = "weather-rest", extra: str = "") -> Path:
    return _write(tmp_path, "cap.yml", IMPORTER.format(source=source, name=name, extra=extra))


def _one_problem(path: Path) -> tuple[int, str, str]:
    with pytest.raises(CapabilityError) as raised:
        load_capabilities([path])
    (problem,) = raised.value.problems
    assert problem.location.file == str(path)
    return problem.location.line, problem.location.path, problem.message


def test_a_missing_file(tmp_path: Path) -> None:
    line, key, message = _one_problem(_importer(tmp_path, "./nowhere.yml"))
    assert (line, key) == (13, "capability.exposes[0].from")
    assert message == f"imported file not found: {tmp_path / 'nowhere.yml'}"


def test_a_file_of_the_wrong_kind(tmp_path: Path) -> None:
    _write(tmp_path, "leaf.yml", LEAF.replace("exposes:", "aggregates:", 1))
    with pytest.raises(CapabilityError) as raised:
        load_capabilities([_importer(tmp_path)])
    assert "capability.exposes[0].from" in str(raised.value)
    _write(tmp_path, "leaf.yml", (DATA / "shared" / "weather.binds.yml").read_text())
    line, key, message = _one_problem(_importer(tmp_path))
    assert (line, key) == (13, "capability.exposes[0].from")
    assert message.startswith(f"{tmp_path / 'leaf.yml'} is a shared binds file; a 'exposes' entry imports from")
    line, key, message = _one_problem(_importer(tmp_path, str(WEATHER)))
    assert f"{WEATHER} is a capability or other document" in message


def test_a_missing_namespace(tmp_path: Path) -> None:
    _write(tmp_path, "leaf.yml", LEAF)
    line, key, message = _one_problem(_importer(tmp_path, name="weather-mcp"))
    assert (line, key) == (14, "capability.exposes[0].import")
    assert message == f"{tmp_path / 'leaf.yml'} has no exposes namespace 'weather-mcp' (it has: weather-rest)"


def test_a_transitive_import(tmp_path: Path) -> None:
    _write(tmp_path, "other.yml", LEAF)
    leaf = _write(
        tmp_path, "leaf.yml", 'ikanos: "1.0.0-beta5"\nexposes:\n  - from: ./other.yml\n    import: weather-rest\n'
    )
    with pytest.raises(CapabilityError) as raised:
        load_capabilities([_importer(tmp_path)])
    outer, inner = raised.value.problems
    assert (outer.location.file, outer.location.line, outer.location.path) == (
        str(tmp_path / "cap.yml"),
        13,
        "capability.exposes[0].from",
    )
    assert f"cannot import 'weather-rest' from {leaf}: that file has problems" in outer.message
    assert (inner.location.file, inner.location.line, inner.location.path) == (str(leaf), 3, "exposes[0].from")
    assert "transitive imports are not supported" in inner.message
    with pytest.raises(CapabilityError, match="transitive imports are not supported"):
        load_documents([leaf])  # validating the shared file alone says so too


def test_an_alias_that_collides(tmp_path: Path) -> None:
    _write(tmp_path, "leaf.yml", LEAF)
    inline = "    - {type: rest, namespace: forecast, port: 9411, resources: []}\n"
    path = _importer(tmp_path, extra="      as: forecast\n" + inline)
    line, key, message = _one_problem(path)
    assert (line, key) == (15, "capability.exposes[0].as")
    assert message.startswith(f"namespace 'forecast' imported from {tmp_path / 'leaf.yml'} is already declared at")
    assert "give the import another name with 'as'" in message
    twice = _importer(tmp_path, extra="    - {from: ./leaf.yml, import: weather-rest}\n")
    with pytest.raises(CapabilityError) as raised:
        load_capabilities([twice])
    assert [p.location.path for p in raised.value.problems] == [  # each import names the other's place
        "capability.exposes[0].import",
        "capability.exposes[1].import",
    ]
    consumed = _importer(tmp_path, extra="      as: weather-api\n")  # one group: consumes, exposes, aggregates
    assert _one_problem(consumed)[1] == "capability.exposes[0].as"


def test_a_problem_inside_the_imported_file_names_its_own_line(tmp_path: Path) -> None:
    leaf = _write(tmp_path, "leaf.yml", LEAF.replace("port: 9410", "port: ninety"))
    with pytest.raises(CapabilityError) as raised:
        load_capabilities([_importer(tmp_path)])
    outer, inner = raised.value.problems
    assert (outer.location.file, outer.location.path) == (str(tmp_path / "cap.yml"), "capability.exposes[0].from")
    assert (inner.location.file, inner.location.line, inner.location.path) == (str(leaf), 5, "exposes[0].port")
    assert "'port' must be an integer" in inner.message


def test_an_imported_file_is_read_within_the_loader_bounds(tmp_path: Path) -> None:
    _write(tmp_path, "leaf.yml", LEAF + "#" + "x" * 4096 + "\n")
    path = _importer(tmp_path)
    with pytest.raises(CapabilityError) as raised:
        load_capabilities([path], limits=ReadLimits(file_bytes=len(path.read_bytes()) + 100))
    outer, inner = raised.value.problems
    assert outer.location.path == "capability.exposes[0].from"
    assert inner.location.file == str(tmp_path / "leaf.yml") and "bytes" in inner.message


def test_a_shared_file_holds_one_section_with_unique_namespaces(tmp_path: Path) -> None:
    both = _write(tmp_path, "both.yml", LEAF + "aggregates:\n  - {namespace: x, label: X, functions: []}\n")
    with pytest.raises(CapabilityError) as raised:
        load_documents([both])
    (problem,) = raised.value.problems
    assert (problem.location.line, problem.location.path) == (_line_of(both, "aggregates:"), "aggregates")
    assert "a shared file holds exactly one of consumes, exposes, aggregates, binds" in problem.message
    twice = _write(tmp_path, "twice.yml", LEAF + LEAF.split("exposes:\n", 1)[1].replace("9410", "9411"))
    with pytest.raises(CapabilityError, match="namespace 'weather-rest' is already declared at .*in this file"):
        load_documents([twice])


def test_a_shared_file_is_not_served_and_a_serving_list_says_why(tmp_path: Path) -> None:
    leaf = _write(tmp_path, "leaf.yml", LEAF)
    problems = _problems([leaf])
    assert problems == [
        f"{leaf}:2:1: shared exposes file: 1 entry (weather-rest), with no 'capability': nothing to serve on its"
        " own; capabilities import its entries (exposes: - from: leaf.yml, import: NAMESPACE): serve those"
        " (at exposes)"
    ]


def test_the_inline_consumes_of_a_shared_consumes_file_resolve_as_before(tmp_path: Path) -> None:
    """The consumes import existed first: the same resolver serves it, renamed with `as`."""
    leaf = _write(
        tmp_path,
        "shared/api.yml",
        """\
        ikanos: "1.0.0-beta5"
        consumes:
          - {type: http, namespace: api, baseUri: "http://localhost:1", resources: []}
        """,
    )
    importer = _write(
        tmp_path,
        "cap.yml",
        f"""\
        ikanos: "1.0.0-beta5"
        capability:
          consumes:
            - {{from: ./shared/{leaf.name}, import: api, as: mine}}
        """,
    )
    (loaded,) = load_capabilities([importer])
    (consumes,) = loaded.consumes
    assert isinstance(consumes, Consumes) and consumes.namespace == "mine" and consumes.where.file == str(leaf)

"""Spec features beyond a plain call, served by `naftiko serve` and called over REST and MCP:
aggregates and `ref`, steps, lookups, mappings, mocks, namespace-qualified `with`, body and
header parameters. The capability files are our own minimal copies of the reference
engine's test fixtures (NOTES.md section 4.1), so these tests need nothing from ../shared."""

from __future__ import annotations

import io
import json
import textwrap
import zipfile
from pathlib import Path
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs

import httpx
import pytest
from mcp import Client
from ruamel.yaml import YAML

from naftiko.engine import CapabilityError, Runtime, load_capabilities
from tests.support import RecordingUpstream, Reply

pytestmark = pytest.mark.anyio

Serve = Callable[[str], dict[str, str]]


@pytest.fixture
def serve(tmp_path: Path, upstream: RecordingUpstream, naftiko) -> Iterator[Serve]:
    """Write a capability, point every consumes namespace at the recording upstream, serve it."""

    def start(text: str) -> dict[str, str]:
        text = textwrap.dedent(text)
        path = tmp_path / "capability.yaml"
        path.write_text(text)
        doc = YAML(typ="safe").load(text)["capability"]
        args = [str(path)]
        for consumes in doc.get("consumes", []):
            args += ["--base-uri", f"{consumes['namespace']}={upstream.url}"]
        for exposes in doc.get("exposes", []):
            args += ["--port", f"{exposes['namespace']}=0"]
        process = naftiko(*args)
        return process.wait_for(*(e["namespace"] for e in doc.get("exposes", [])))

    yield start


AGGREGATES = """\
naftiko: 1.0.0-alpha2
capability:
  aggregates:
    - label: Forecast
      namespace: forecast
      functions:
        - name: get-forecast
          description: Fetch current weather forecast for a location.
          semantics: {safe: true, idempotent: true}
          inputParameters:
            - {name: location, type: string, description: City or coordinates}
          call: weather-api.get-forecast
          with:
            city: forecast.location
          outputParameters:
            - type: string
              mapping: $.forecast
        - name: hello
          description: Builds a greeting payload.
          inputParameters:
            - {name: name, type: string, description: Name to greet}
          outputParameters:
            - {name: message, type: string, value: "Hello, {{name}}!"}
            - {name: source, type: string, value: aggregate-mock}
        - name: delete-item
          description: Delete an item.
          semantics: {safe: false, idempotent: true}
          outputParameters:
            - {name: deleted, type: boolean, value: "true"}
  exposes:
    - type: mcp
      port: 9100
      namespace: forecast-mcp
      tools:
        - name: get-forecast
          description: Get the weather forecast.
          ref: forecast.get-forecast
        - ref: forecast.get-forecast
          name: get-forecast-inherited
        - name: hello
          description: Return greeting payload.
          ref: forecast.hello
        - name: delete-item
          ref: forecast.delete-item
          hints: {openWorld: false, destructive: true}
    - type: rest
      port: 9101
      namespace: forecast-rest
      resources:
        - path: /forecast/{location}
          operations:
            - ref: forecast.get-forecast
              method: GET
        - path: /hello
          operations:
            - method: GET
              ref: forecast.hello
              inputParameters:
                - {name: name, in: query, type: string, description: Name to greet}
  consumes:
    - type: http
      namespace: weather-api
      baseUri: http://localhost:1
      resources:
        - path: forecast
          name: forecast
          operations:
            - method: GET
              name: get-forecast
              inputParameters:
                - {name: city, in: query}
"""


async def test_aggregate_refs_over_mcp_and_rest(serve: Serve, upstream: RecordingUpstream) -> None:
    urls = serve(AGGREGATES)
    upstream.reply("GET", "/forecast", Reply(json={"forecast": "sunny", "extra": 1}))
    async with Client(urls["forecast-mcp"], mode="legacy", cache=None) as mcp:
        tools = {t.name: t for t in (await mcp.list_tools()).tools}
        result = await mcp.call_tool("get-forecast", {"location": "Paris"})
        hello = await mcp.call_tool("hello", {"name": "Nina"})
    assert list(tools) == ["get-forecast", "get-forecast-inherited", "hello", "delete-item"]
    inherited = tools["get-forecast-inherited"]
    assert inherited.description == "Fetch current weather forecast for a location."
    assert inherited.input_schema["properties"] == {
        "location": {"type": "string", "description": "City or coordinates"}
    }
    hints = inherited.annotations
    assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint, hints.open_world_hint) == (
        True,
        False,
        True,
        None,
    )
    delete = tools["delete-item"].annotations
    assert (delete.read_only_hint, delete.destructive_hint, delete.idempotent_hint, delete.open_world_hint) == (
        False,
        True,
        True,
        False,
    )
    assert result.structured_content == {"result": "sunny"}
    assert parse_qs(upstream.last.query) == {"city": ["Paris"]}
    assert hello.structured_content == {"message": "Hello, Nina!", "source": "aggregate-mock"}

    rest = urls["forecast-rest"]
    response = httpx.get(f"{rest}/forecast/Lyon")
    assert response.json() == "sunny" and parse_qs(upstream.last.query) == {"city": ["Lyon"]}
    greeting = httpx.get(f"{rest}/hello", params={"name": "Nina"})
    assert greeting.status_code == 200
    assert greeting.json() == {"message": "Hello, Nina!", "source": "aggregate-mock"}


def test_unknown_ref_fails_at_load(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(AGGREGATES.replace("ref: forecast.hello", "ref: forecast.nope"))
    with pytest.raises(CapabilityError) as caught:
        Runtime(load_capabilities([path]), resolve_environment=False)
    problems = caught.value.problems
    assert [p.location.path for p in problems] == [
        "capability.exposes[0].tools[2].ref",
        "capability.exposes[1].resources[1].operations[0].ref",
    ]
    assert "ref 'forecast.nope' names no aggregate function (known: forecast.delete-item," in problems[0].message


STEPS = """\
naftiko: 1.0.0-alpha2
capability:
  aggregates:
    - label: Shipyard
      namespace: shipyard
      functions:
        - name: get-voyage-manifest
          description: Assemble a voyage manifest.
          inputParameters:
            - {name: voyage-id, type: string, description: Voyage identifier}
          steps:
            - name: fetch-voyage
              type: call
              call: registry.get-voyage
              with:
                voyage-id: shipyard.voyage-id
            - name: list-crew
              type: call
              call: registry.list-crew
            - name: captain
              type: lookup
              index: list-crew
              match: id
              lookupValue: $.fetch-voyage.captain
              outputParameters: [name]
            - name: all-crew
              type: lookup
              index: list-crew
              match: id
              lookupValue: $.fetch-voyage.crewIds
              outputParameters: [name, rank]
          mappings:
            - {targetName: voyage.id, value: $.fetch-voyage.voyageId}
            - {targetName: voyage.ship, value: $.fetch-voyage.ship.name}
            - {targetName: captain, value: $.captain.name}
            - {targetName: crew, value: $.all-crew}
            - {targetName: missing, value: $.nothing.here}
  exposes:
    - type: mcp
      port: 9200
      namespace: shipyard-tools
      tools:
        - name: get-voyage-manifest
          ref: shipyard.get-voyage-manifest
        - name: voyage-direct
          description: Steps declared on the tool itself.
          inputParameters:
            - {name: voyageId, type: string, description: Voyage ID}
          steps:
            - name: get-voyage
              type: call
              call: registry.get-voyage
              with:
                voyage-id: shipyard-tools.voyageId
          mappings:
            - {targetName: voyageId, value: $.get-voyage.voyageId}
          outputParameters:
            - {name: voyageId, type: string}
  consumes:
    - type: http
      namespace: registry
      baseUri: http://localhost:19999
      resources:
        - name: voyage
          path: /voyages/{{voyage-id}}
          operations:
            - name: get-voyage
              method: GET
              inputParameters:
                - {name: voyage-id, in: path}
        - name: crew
          path: /crew
          operations:
            - name: list-crew
              method: GET
              outputParameters:
                - {name: rank, type: string, value: $.grade}
"""


async def test_steps_lookups_and_dotted_mappings(serve: Serve, upstream: RecordingUpstream) -> None:
    urls = serve(STEPS)
    upstream.reply(
        "GET",
        "/voyages/VOY-2026-042",
        Reply(
            json={
                "voyageId": "VOY-2026-042",
                "ship": {"name": "Northern Star"},
                "captain": "C1",
                "crewIds": ["C2", "C9", "C3"],
            }
        ),
    )
    upstream.reply(
        "GET",
        "/crew",
        Reply(
            json=[
                {"id": "C1", "name": "Ada", "grade": "captain"},
                {"id": "C2", "name": "Bo", "grade": "mate"},
                {"id": "C3", "name": "Cy", "grade": "cook"},
            ]
        ),
    )
    async with Client(urls["shipyard-tools"], mode="auto", cache=None) as mcp:
        manifest = await mcp.call_tool("get-voyage-manifest", {"voyage-id": "VOY-2026-042"})
        direct = await mcp.call_tool("voyage-direct", {"voyageId": "VOY-2026-042"})
    assert not manifest.is_error, manifest.content
    assert manifest.structured_content == {
        "voyage": {"id": "VOY-2026-042", "ship": "Northern Star"},
        "captain": "Ada",
        "crew": [{"name": "Bo", "rank": "mate"}, {"name": "Cy", "rank": "cook"}],
    }
    assert direct.structured_content == {"voyageId": "VOY-2026-042"}
    assert [r.path for r in upstream.requests] == ["/voyages/VOY-2026-042", "/crew", "/voyages/VOY-2026-042"]


def test_lookup_of_a_later_step_fails_at_load(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    lookup = "\n              match: id\n              lookupValue: $.fetch-voyage.captain"
    path.write_text(STEPS.replace("index: list-crew" + lookup, "index: all-crew" + lookup))
    with pytest.raises(
        CapabilityError, match="lookup step 'captain' uses index 'all-crew', which is not an earlier step"
    ):
        Runtime(load_capabilities([path]), resolve_environment=False)


BODY_AND_HEADERS = """\
naftiko: 1.0.0-alpha2
capability:
  exposes:
    - type: rest
      port: 8084
      namespace: users-rest
      resources:
        - path: /users
          operations:
            - method: POST
              call: users-api.create
              inputParameters:
                - {name: userId, in: body, type: string, description: User ID, value: $.user.id}
                - {name: userName, in: body, type: string, description: User name, value: $.user.name}
        - path: /search
          operations:
            - method: POST
              call: users-api.search
              inputParameters:
                - {name: userId, in: body, type: string, description: User ID, value: $.user.id}
        - path: /ships/{{imo}}
          operations:
            - method: GET
              call: users-api.get-ship
              with:
                imo_number: "{{imo}}"
        - path: /ships
          operations:
            - method: POST
              call: users-api.register-ship
              with:
                shipImo: users-rest.shipImo
  consumes:
    - type: http
      namespace: users-api
      baseUri: http://example.com
      inputParameters:
        - {name: X-API-Key, in: header, value: ABC123}
      resources:
        - path: /create
          name: create
          operations:
            - method: POST
              name: create
              body: |
                {"id":"{{userId}}","name":"{{userName}}"}
        - path: /items
          name: items
          operations:
            - method: POST
              name: search
              inputParameters:
                - {name: q, in: query, value: "{{userId}}"}
                - {name: absent, in: query, value: "{{nobody}}"}
        - path: /ships/{{imo_number}}
          name: ships
          operations:
            - {method: GET, name: get-ship}
        - path: /ships
          name: ship-register
          operations:
            - method: POST
              name: register-ship
              body: '{"shipImo": "{{shipImo}}"}'
"""


def test_body_inputs_headers_and_query_templates(serve: Serve, upstream: RecordingUpstream) -> None:
    base = serve(BODY_AND_HEADERS)["users-rest"]
    httpx.post(f"{base}/users", json={"user": {"id": "123", "name": "Alice"}})
    assert upstream.last.path == "/create"
    assert json.loads(upstream.last.body) == {"id": "123", "name": "Alice"}
    assert upstream.last.headers["x-api-key"] == "ABC123"

    httpx.post(f"{base}/search", json={"user": {"id": "999"}})
    assert upstream.last.query == "q=999", "a query template with a missing value drops that parameter"

    httpx.get(f"{base}/ships/IMO-9321483")
    assert upstream.last.path == "/ships/IMO-9321483"

    upstream.reply("POST", "/ships", Reply(status=201, json={"ok": True}))
    created = httpx.post(f"{base}/ships", params={"shipImo": "IMO-9321483"})
    assert created.status_code == 201
    assert upstream.last.body == b'{"shipImo": "IMO-9321483"}'


SHARED_CONSUMES = """\
naftiko: 1.0.0-alpha2
consumes:
  - type: http
    namespace: shared-users
    baseUri: http://localhost:1
    resources:
      - name: me
        path: /users/me
        operations:
          - {name: whoami, method: GET}
"""

IMPORTING = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
    - location: ./shared/users.yaml
      import: shared-users
      as: people
  exposes:
    - type: rest
      port: 8000
      namespace: people-rest
      resources:
        - path: /me
          operations:
            - {method: GET, call: people.whoami}
"""


def test_imported_consumes_relative_to_the_file(tmp_path: Path, upstream: RecordingUpstream, naftiko) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "users.yaml").write_text(SHARED_CONSUMES)
    (tmp_path / "cap.yaml").write_text(IMPORTING)
    process = naftiko(str(tmp_path / "cap.yaml"), "--base-uri", f"people={upstream.url}", "--port", "people-rest=0")
    base = process.wait_for("people-rest")["people-rest"]
    upstream.reply("GET", "/users/me", Reply(json={"id": 1}))
    assert httpx.get(f"{base}/me").json() == {"id": 1}


def test_import_errors_name_the_file_and_namespace(tmp_path: Path) -> None:
    (tmp_path / "cap.yaml").write_text(IMPORTING)
    with pytest.raises(CapabilityError, match="imported file not found: .*shared/users.yaml"):
        load_capabilities([tmp_path / "cap.yaml"])
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "users.yaml").write_text(SHARED_CONSUMES.replace("shared-users", "other"))
    with pytest.raises(CapabilityError, match="has no consumes namespace 'shared-users' \\(it has: other\\)"):
        load_capabilities([tmp_path / "cap.yaml"])


FORWARD = """\
naftiko: 1.0.0-alpha2
capability:
  exposes:
    - type: rest
      namespace: docs-rest
      port: 8081
      resources:
        - path: /notion/{{path}}
          forward:
            targetNamespace: notion
            trustedHeaders: [Notion-Version]
        - path: /notion/pinned
          operations:
            - {method: GET, call: notion.get-my-user}
  consumes:
    - type: http
      namespace: notion
      baseUri: http://localhost:1
      inputParameters:
        - {name: X-API-Version, in: header, value: "2026-03-03"}
      authentication: {type: basic, username: scott, password: tiger}
      resources:
        - name: users
          path: users/me
          operations:
            - {name: get-my-user, method: GET}
"""


def test_forward_passes_path_method_query_body_and_trusted_headers_only(
    serve: Serve, upstream: RecordingUpstream
) -> None:
    base = serve(FORWARD)["docs-rest"]
    upstream.reply("PATCH", "/v1/pages/p%201", Reply(status=202, body=b"accepted", content_type="text/plain"))
    response = httpx.patch(
        f"{base}/notion/v1/pages/p%201",
        params={"a": "1"},
        content=b'{"x": 1}',
        headers={
            "Notion-Version": "2022-06-28",
            "Content-Type": "application/json",
            "Authorization": "Bearer caller",
            "X-Other": "no",
        },
    )
    assert (response.status_code, response.text) == (202, "accepted")
    sent = upstream.last
    assert (sent.method, sent.path, sent.query, sent.body) == ("PATCH", "/v1/pages/p%201", "a=1", b'{"x": 1}')
    assert sent.headers["notion-version"] == "2022-06-28"
    assert sent.headers["x-api-version"] == "2026-03-03"
    assert sent.headers["authorization"].startswith("Basic ")
    assert "x-other" not in sent.headers
    assert httpx.get(f"{base}/notion/pinned").status_code == 200
    assert upstream.last.path == "/users/me", "a declared operation wins over the forward route"


FORMATS = """\
naftiko: 1.0.0-alpha2
capability:
  exposes:
    - type: rest
      namespace: fleet-rest
      port: 8000
      resources:
        - path: /vessels
          operations:
            - method: GET
              call: fleet.list-vessels
              outputParameters:
                - type: array
                  mapping: $.vessel
                  items:
                    type: object
                    properties:
                      code: {type: string, mapping: $.code}
                      name: {type: string, mapping: $.name}
        - path: /crew
          operations:
            - {method: GET, call: fleet.list-crew}
  consumes:
    - type: http
      namespace: fleet
      baseUri: http://localhost:1
      resources:
        - name: vessels
          path: /vessels
          operations:
            - {name: list-vessels, method: GET, outputRawFormat: xml}
        - name: crew
          path: /crew.csv
          operations:
            - {name: list-crew, method: GET, outputRawFormat: CSV}
"""


def test_xml_and_csv_upstreams_become_json(serve: Serve, upstream: RecordingUpstream) -> None:
    base = serve(FORMATS)["fleet-rest"]
    upstream.reply(
        "GET",
        "/vessels",
        Reply(
            content_type="application/xml",
            body=(
                b"<vessels><vessel><code>V001</code><name>Sea Eagle</name><year>2001</year></vessel>"
                b"<vessel><code>V002</code><name>Harbor Star</name></vessel></vessels>"
            ),
        ),
    )
    upstream.reply("GET", "/crew.csv", Reply(content_type="text/csv", body=b'id,name\n1,"Smith, Al"\n2,Bo\n'))
    assert httpx.get(f"{base}/vessels").json() == [
        {"code": "V001", "name": "Sea Eagle"},
        {"code": "V002", "name": "Harbor Star"},
    ]
    assert httpx.get(f"{base}/crew").json() == [{"id": "1", "name": "Smith, Al"}, {"id": "2", "name": "Bo"}]
    upstream.reply("GET", "/vessels", Reply(content_type="application/xml", body=b"<vessels><broken></vessels>"))
    broken = httpx.get(f"{base}/vessels")
    assert broken.status_code == 502 and "not valid xml" in broken.json()["error"]["message"]


def test_unknown_format_fails_at_load(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(FORMATS.replace("outputRawFormat: CSV", "outputRawFormat: toml"))
    with pytest.raises(CapabilityError, match="unsupported outputRawFormat 'toml'"):
        Runtime(load_capabilities([path]), resolve_environment=False)


SKILLS = """\
naftiko: 1.0.0-alpha2
capability:
  exposes:
    - type: rest
      port: 9098
      namespace: orders-rest
      resources:
        - path: /orders
          operations:
            - {method: GET, name: list-orders, call: mock-orders.list}
    - type: skill
      port: 9097
      namespace: orders-skills
      description: Order management skills catalog
      skills:
        - name: order-management
          description: Tools for managing orders
          location: file://SKILL_DIR
          allowed-tools: list-orders
          argument-hint: Use for order operations
          tools:
            - name: list-orders
              description: List all orders in the system
              from: {sourceNamespace: orders-rest, action: list-orders}
            - name: order-guide
              description: Guide for working with orders
              instruction: order-guide.md
        - name: onboarding-guide
          description: A purely descriptive skill with no tools
  consumes:
    - type: http
      namespace: mock-orders
      baseUri: http://localhost:9099/v1
      resources:
        - name: orders
          path: orders
          operations:
            - {method: GET, name: list}
"""


def test_skill_catalogue(tmp_path: Path, serve: Serve) -> None:
    folder = tmp_path / "order-management"
    (folder / "docs").mkdir(parents=True)
    (folder / "order-guide.md").write_text("# Orders\n")
    (folder / "docs" / "faq.md").write_text("FAQ\n")
    base = serve(SKILLS.replace("SKILL_DIR", str(folder)))["orders-skills"]
    listing = httpx.get(f"{base}/skills").json()
    assert listing["count"] == 2
    assert [s["name"] for s in listing["skills"]] == ["order-management", "onboarding-guide"]
    detail = httpx.get(f"{base}/skills/order-management").json()
    assert detail["allowed-tools"] == "list-orders" and detail["argument-hint"] == "Use for order operations"
    assert detail["tools"] == [
        {
            "name": "list-orders",
            "description": "List all orders in the system",
            "type": "derived",
            "invocationRef": {"targetNamespace": "orders-rest", "action": "list-orders", "mode": "rest"},
        },
        {
            "name": "order-guide",
            "description": "Guide for working with orders",
            "type": "instruction",
            "instruction": "order-guide.md",
        },
    ]
    assert httpx.get(f"{base}/skills/onboarding-guide").json()["tools"] == []
    assert httpx.get(f"{base}/skills/nope").status_code == 404
    assert httpx.get(f"{base}/skills/order-management/contents").json()["files"] == ["docs/faq.md", "order-guide.md"]
    assert httpx.get(f"{base}/skills/order-management/contents/docs/faq.md").text == "FAQ\n"
    assert httpx.get(f"{base}/skills/order-management/contents/..%2F..%2Fetc%2Fpasswd").status_code == 404
    download = httpx.get(f"{base}/skills/order-management/download")
    names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
    assert sorted(names) == ["order-management/docs/faq.md", "order-management/order-guide.md"]


def test_skill_load_time_checks(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        SKILLS.replace("sourceNamespace: orders-rest", "sourceNamespace: nowhere").replace(
            "          location: file://SKILL_DIR\n", ""
        )
    )
    with pytest.raises(CapabilityError) as caught:
        load_capabilities([path])
    messages = [p.message for p in caught.value.problems]
    assert (
        "skill tool 'order-guide' is an instruction, which needs a 'location' on skill 'order-management'" in messages
    )
    path.write_text(SKILLS.replace("sourceNamespace: orders-rest", "sourceNamespace: nowhere"))
    with pytest.raises(CapabilityError, match="sourceNamespace 'nowhere' is not a REST or MCP block"):
        load_capabilities([path])


# --- forms the reference engine's own files and serializer write -------------------------------

ITEMS_LISTS = """\
naftiko: 1.0.0-alpha1
capability:
  consumes:
    - type: http
      namespace: registry
      baseUri: http://localhost:1
      resources:
        - name: ship
          path: /ships/{{imo_number}}
          operations:
            - {name: get-ship, method: GET}
        - name: crew
          path: /crew
          operations:
            - {name: list-crew, method: GET}
  exposes:
    - type: mcp
      port: 9300
      namespace: shipyard-tools
      tools:
        - name: get-ship-with-crew
          description: Ship details with resolved crew names (tutorial step 7)
          inputParameters:
            - {name: imo, type: string, required: true, description: IMO number}
          steps:
            - {name: get-ship, type: call, call: registry.get-ship, with: {imo_number: shipyard-tools.imo}}
            - {name: list-crew, type: call, call: registry.list-crew}
            - name: resolve-crew
              type: lookup
              index: list-crew
              match: crewId
              lookupValue: $.get-ship.assignedCrew
              outputParameters: [fullName, role]
          mappings:
            - {targetName: name, value: $.get-ship.vessel_name}
            - {targetName: crew, value: $.resolve-crew}
          outputParameters:
            - {name: name, type: string}
            - name: crew
              type: array
              items:
                - {name: fullName, type: string}
                - {name: role, type: string}
    - type: rest
      port: 9301
      namespace: shipyard-api
      resources:
        - path: /crew
          operations:
            - method: GET
              call: registry.list-crew
              outputParameters:
                - type: array
                  mapping: $.
                  items:
                    - {name: fullName, type: string}
                    - {name: role, type: string}
                    - {name: badge, type: string, mapping: $.id}
        - path: /crew-as-serialized
          operations:
            - method: GET
              call: registry.list-crew
              outputParameters:
                - type: array
                  mapping: $.
                  items:
                    - type: object
                      properties:
                        who: {type: string, mapping: $.fullName}
"""

CREW = [
    {"crewId": "C1", "fullName": "Ann Lee", "role": "captain", "id": 7, "salary": 1},
    {"crewId": "C2", "fullName": "Bo Kim", "id": 8},
    {"crewId": "C3", "fullName": "Cy Dunn", "role": "cook", "id": 9},
]


async def test_items_written_as_lists_keep_every_field(serve: Serve, upstream: RecordingUpstream) -> None:
    """The reference engine's tutorial (step 7 on) writes `items` as a list of named fields, and its
    serializer as a one-entry list; the reference keeps only the first entry. Every field is kept here."""
    urls = serve(ITEMS_LISTS)
    upstream.reply("GET", "/ships/IMO-1", Reply(json={"vessel_name": "Star", "assignedCrew": ["C1", "C2"]}))
    upstream.reply("GET", "/crew", Reply(json=CREW))
    async with Client(urls["shipyard-tools"], mode="legacy", cache=None) as mcp:
        result = await mcp.call_tool("get-ship-with-crew", {"imo": "IMO-1"})
    assert result.structured_content == {
        "name": "Star",
        "crew": [{"fullName": "Ann Lee", "role": "captain"}, {"fullName": "Bo Kim", "role": None}],
    }
    rest = urls["shipyard-api"]
    assert httpx.get(f"{rest}/crew").json() == [
        {"fullName": "Ann Lee", "role": "captain", "badge": 7},
        {"fullName": "Bo Kim", "role": None, "badge": 8},
        {"fullName": "Cy Dunn", "role": "cook", "badge": 9},
    ]
    assert httpx.get(f"{rest}/crew-as-serialized").json() == [{"who": "Ann Lee"}, {"who": "Bo Kim"}, {"who": "Cy Dunn"}]


def test_items_lists_that_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    broken = ITEMS_LISTS.replace(
        "                    - {name: role, type: string}\n                    - {name: badge",
        "                    - {type: string}\n                    - {name: badge",
    )
    broken = broken.replace(
        "                - {name: role, type: string}\n", "                - {name: fullName, type: number}\n"
    )
    path.write_text(broken)
    with pytest.raises(CapabilityError) as caught:
        load_capabilities([path])
    assert [(p.location.path, p.message) for p in caught.value.problems] == [
        ("capability.exposes[0].tools[0].outputParameters[1].items[1]", "'items' lists the field 'fullName' twice"),
        (
            "capability.exposes[1].resources[0].operations[0].outputParameters[0].items",
            "a list of 'items' gives the fields of an object item, so each entry needs a 'name'",
        ),
    ]

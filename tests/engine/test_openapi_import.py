"""OpenAPI documents imported into capability files (engine/openapi/importer.py): every shared fixture and our
own PostHog Tasks document loads with no problem, and what each part of a document becomes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openapi_spec_validator as validator
import pytest
from ruamel.yaml import YAML

from naftiko.engine import ImportLimits, OpenApiError, Runtime, import_openapi, load_capabilities
from naftiko.engine.openapi.importer import convert, kebab
from tests.support import ROOT, SHARED, shared_or_skip

DATA = ROOT / "tests" / "data" / "openapi"
POSTHOG = DATA / "posthog-tasks-3.0.yaml"
SHARED_DOCS = [
    SHARED / "spec" / "fixtures" / "openapi" / name
    for name in ("petstore-2.0.yaml", "petstore-3.0.yaml", "petstore-3.1.yaml", "petstore-swagger2-full.json")
] + sorted((SHARED / "spec" / "ikanos" / "fixtures" / "openapi").glob("*.yaml"))


def written(tmp_path: Path, spec: str | Path, namespace: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Import `spec`, write the file, load it back: the path and the data as written."""
    imported = import_openapi(str(spec), namespace=namespace)
    path = tmp_path / f"{imported.namespace}.yaml"
    path.write_text(imported.yaml())
    return path, YAML(typ="safe").load(path.read_text())


def loads_cleanly(path: Path) -> None:
    """What `naftiko validate` checks: the loader, then the runtime built without bindings."""
    [capability] = load_capabilities([path])
    assert not capability.warnings
    Runtime([capability], resolve_environment=False)


@pytest.mark.parametrize("spec", SHARED_DOCS, ids=lambda p: p.name)
def test_shared_documents_import_and_validate(tmp_path: Path, spec: Path) -> None:
    path, data = written(tmp_path, shared_or_skip(spec))
    loads_cleanly(path)
    source = YAML(typ="safe").load(spec.read_text())
    operations = sum(
        1 for item in source["paths"].values() for method in item if method in ("get", "put", "post", "delete", "patch")
    )
    [consumes] = data["capability"]["consumes"]
    imported = [op for resource in consumes["resources"] for op in resource["operations"]]
    assert len(imported) == operations
    rest, mcp = data["capability"]["exposes"]
    assert len(mcp["tools"]) == operations
    assert len({t["name"] for t in mcp["tools"]}) == operations
    assert sum(len(r["operations"]) for r in rest["resources"]) == operations
    assert not consumes["baseUri"].endswith("/")


def test_posthog_document(tmp_path: Path) -> None:
    path, data = written(tmp_path, POSTHOG)
    loads_cleanly(path)
    [consumes] = data["capability"]["consumes"]
    assert consumes["namespace"] == "posthog-tasks"
    assert consumes["baseUri"] == "https://us.posthog.com"  # trailing `/` dropped
    assert consumes["authentication"] == {"type": "bearer", "token": "{{env.BEARER_TOKEN}}"}
    assert data["binds"] == [{"namespace": "env", "keys": {"BEARER_TOKEN": "BEARER_TOKEN"}}]
    resources = {r["path"]: r for r in consumes["resources"]}
    tasks = resources["/api/projects/{{project_id}}/tasks/"]
    listing, create = tasks["operations"]
    assert (listing["name"], listing["method"], listing["description"]) == ("tasks-list", "GET", "List tasks")
    params = {p["name"]: p for p in listing["inputParameters"]}
    assert params["project_id"] == {
        "name": "project_id",
        "in": "path",
        "type": "string",
        "description": "Project ID, or `@current` for the key's current project.",
        "required": True,
    }  # from the path item's parameters, through a $ref
    assert params["limit"] == {
        "name": "limit",
        "in": "query",
        "type": "integer",
        "description": "Number of results to return per page.",
    }
    assert listing["outputParameters"] == [{"name": "result", "type": "object", "value": "$."}]
    body = [p for p in create["inputParameters"] if p["in"] == "body"]
    assert [(p["name"], p.get("required", False)) for p in body] == [
        ("title", False),
        ("description", True),
        ("repository", False),
    ]
    # one property only: one `body` parameter carrying the whole object
    append = resources["/api/projects/{{project_id}}/tasks/{{task_id}}/runs/{{id}}/append_log/"]["operations"][0]
    assert append["inputParameters"][-1] == {"name": "body", "in": "body", "type": "object", "required": True,
                                            "description": "Request body (JSON)."}  # fmt: skip
    delete = resources["/api/projects/{{project_id}}/tasks/{{task_id}}/"]["operations"][1]
    assert "outputParameters" not in delete  # a 204: passthrough
    rest, mcp = data["capability"]["exposes"]
    assert rest["namespace"] == "posthog-tasks-rest" and mcp["namespace"] == "posthog-tasks-mcp"
    assert rest["resources"][0]["path"] == "/api/projects/{project_id}/tasks"
    tools = {t["name"]: t for t in mcp["tools"]}
    assert tools["tasks-list"]["description"] == "List tasks. Tasks the key's user created, newest first."
    assert tools["tasks-list"]["hints"] == {"readOnly": True, "destructive": False, "idempotent": True}
    assert tools["tasks-destroy"]["hints"]["destructive"] is True
    assert tools["tasks-list"]["with"]["limit"] == "tools.limit"
    assert {p["name"]: p["required"] for p in tools["tasks-list"]["inputParameters"]}["project_id"] is True


def test_namespace_flag_and_bad_namespace(tmp_path: Path) -> None:
    _, data = written(tmp_path, POSTHOG, namespace="ph")
    assert data["capability"]["consumes"][0]["namespace"] == "ph"
    assert data["capability"]["exposes"][0]["resources"][0]["operations"][0]["call"] == "ph.tasks-list"
    with pytest.raises(OpenApiError, match="a namespace is letters"):
        import_openapi(str(POSTHOG), namespace="Bad Name")


def doc(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"openapi": "3.1.0", "info": {"title": "T"}, "paths": {"/x": {"get": {"responses": {}}}}}
    base.update(extra)
    return base


def test_names_without_operation_ids_are_method_and_path_and_unique() -> None:
    paths = {
        "/pets/{id}": {"get": {}, "delete": {}},
        "/pets-{x}": {"parameters": [], "get": {"operationId": "get-pets-id"}},
    }
    imported = convert(doc(paths=paths), "t")
    tools = [t["name"] for t in imported.capability["capability"]["exposes"][1]["tools"]]
    assert tools == ["get-pets-id", "delete-pets-id", "get-pets-id-2"]
    assert kebab("listPetsByID") == "list-pets-by-id"
    long = convert(doc(paths={"/" + "segment/" * 20 + "end": {"get": {}}}), "t")
    assert len(long.capability["capability"]["exposes"][1]["tools"][0]["name"]) <= 64
    assert kebab("PostHog Tasks", split_words=False) == "posthog-tasks"


def test_swagger2_base_uri_and_auth_schemes() -> None:
    swagger = {
        "swagger": "2.0",
        "info": {"title": "S"},
        "host": "api.example.org",
        "basePath": "/v2/",
        "schemes": ["http", "https"],
        "securityDefinitions": {"basic": {"type": "basic"}},
        "paths": {"/a": {"get": {}}},
    }
    consumes = convert(swagger, "s").capability["capability"]["consumes"][0]
    assert consumes["baseUri"] == "https://api.example.org/v2"
    assert consumes["authentication"] == {
        "type": "basic",
        "username": "{{env.USERNAME}}",
        "password": "{{env.PASSWORD}}",
    }
    key = {"components": {"securitySchemes": {"k": {"type": "apiKey", "in": "query", "name": "appid"}}}}
    auth = convert(doc(**key), "t").capability["capability"]["consumes"][0]["authentication"]
    assert auth == {"type": "apikey", "key": "appid", "value": "{{env.API_KEY}}", "placement": "query"}
    servers = {"servers": [{"url": "https://{region}.example.com/", "variables": {"region": {"default": "eu"}}}]}
    assert convert(doc(**servers), "t").capability["capability"]["consumes"][0]["baseUri"] == "https://eu.example.com"
    assert convert(doc(), "t").capability["capability"]["consumes"][0]["baseUri"] == "https://api.example.com"


def test_ref_cycles_and_depth_stop() -> None:
    schemas = {
        "A": {"type": "object", "allOf": [{"$ref": "#/components/schemas/B"}], "properties": {"a": {"type": "string"}}},
        "B": {"allOf": [{"$ref": "#/components/schemas/A"}], "properties": {"b": {"type": "integer"}}},
        "Loop": {"$ref": "#/components/schemas/Loop"},
    }
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}}
    paths = {
        "/x": {
            "post": {
                "requestBody": body,
                "responses": {
                    "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Loop"}}}}
                },
            }
        }
    }
    imported = convert(doc(paths=paths, components={"schemas": schemas}), "t")
    op = imported.capability["capability"]["consumes"][0]["resources"][0]["operations"][0]
    assert [(p["name"], p["type"]) for p in op["inputParameters"]] == [("a", "string"), ("b", "integer")]
    assert op["outputParameters"][0]["type"] == "object"  # the self-reference stands for an open schema
    deep = {f"S{i}": {"$ref": f"#/components/schemas/S{i + 1}"} for i in range(100)}
    deep["S100"] = {"type": "array"}
    paths["/x"]["post"]["responses"] = {
        "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/S0"}}}}
    }
    shallow = convert(doc(paths=paths, components={"schemas": deep}), "t", limits=ImportLimits(ref_depth=8))
    assert (
        shallow.capability["capability"]["consumes"][0]["resources"][0]["operations"][0]["outputParameters"][0]["type"]
        == "object"
    )
    far = convert(doc(paths=paths, components={"schemas": deep}), "t", limits=ImportLimits(ref_depth=200))
    assert (
        far.capability["capability"]["consumes"][0]["resources"][0]["operations"][0]["outputParameters"][0]["type"]
        == "array"
    )


def test_what_cannot_be_carried_over_is_noted() -> None:
    paths = {
        "/f": {
            "post": {
                "parameters": [{"name": "filter[name]", "in": "query", "schema": {"type": "string"}}],
                "requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object"}}}},
            }
        }
    }
    imported = convert(doc(paths=paths), "t")
    assert any("filter[name]" in note for note in imported.notes)
    assert any("multipart/form-data" in note for note in imported.notes)
    assert "inputParameters" not in imported.capability["capability"]["consumes"][0]["resources"][0]["operations"][0]


def test_bad_documents_are_clear_errors(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text(json.dumps(doc(padding="x" * 5000)))
    with pytest.raises(OpenApiError, match=r"larger than 4096 bytes \(the import limit\)"):
        import_openapi(str(big), limits=ImportLimits(document_bytes=4096))
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(OpenApiError, match="a mapping at the top"):
        import_openapi(str(tmp_path / "list.yaml"))
    (tmp_path / "other.yaml").write_text("naftiko: 1.0.0-alpha2\n")
    with pytest.raises(OpenApiError, match="not an OpenAPI document"):
        import_openapi(str(tmp_path / "other.yaml"))
    (tmp_path / "broken.json").write_text('{"openapi": ')
    with pytest.raises(OpenApiError, match="not valid JSON"):
        import_openapi(str(tmp_path / "broken.json"))
    (tmp_path / "broken.yaml").write_text("openapi: [1\n")
    with pytest.raises(OpenApiError, match=r"cannot read the YAML: .*broken.yaml:2:1: not valid YAML"):
        import_openapi(str(tmp_path / "broken.yaml"))
    flow = "openapi: 3.0.3\npaths:\n" + "".join(f"  /r{i}: {{get: {{operationId: g{i}}}}}\n" for i in range(400))
    (tmp_path / "flow.yaml").write_text(flow)
    assert len(import_openapi(str(tmp_path / "flow.yaml")).capability["capability"]["exposes"][1]["tools"]) == 400
    with pytest.raises(OpenApiError, match="must be plain block YAML"):
        import_openapi(str(tmp_path / "flow.yaml"), limits=ImportLimits(full_yaml_bytes=1024))
    with pytest.raises(OpenApiError, match="cannot read"):
        import_openapi(str(tmp_path / "missing.yaml"))
    with pytest.raises(OpenApiError, match="no operation"):
        convert(doc(paths={}), "t")


@pytest.mark.anyio
async def test_imported_header_path_and_body_reach_the_upstream(tmp_path: Path, upstream) -> None:
    paths = {
        "/items/{item_id}": {
            "put": {
                "operationId": "putItem",
                "parameters": [
                    {"name": "item_id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "X-Request-Id", "in": "header", "schema": {"type": "string"}},
                    {"name": "dry_run", "in": "query", "schema": {"type": "boolean"}},
                ],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"size": {"type": "integer"}, "tag": {}}}
                        }
                    }
                },
                "responses": {"200": {"content": {"application/json": {"schema": {"type": "object"}}}}},
            }
        }
    }
    keyed = {"components": {"securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}}}}
    imported = convert(doc(paths=paths, **keyed), "inline")
    path = tmp_path / "inline.yaml"
    path.write_text(imported.yaml())
    runtime = Runtime.load(path, base_uris={"t": upstream.url}, environ={"API_KEY": "k-1"})
    async with runtime:
        status, _ = await runtime.call(
            "t.put-item", {"item_id": "a b", "X-Request-Id": "r-9", "dry_run": True, "size": 3, "tag": "x"}
        )
    assert status == 200
    seen = upstream.last
    assert (seen.method, seen.path, seen.query) == ("PUT", "/items/a%20b", "dry_run=true")
    assert (seen.headers["x-request-id"], seen.headers["x-api-key"]) == ("r-9", "k-1")
    assert seen.json == {"size": 3, "tag": "x"}


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """(method, path without a trailing `/`) → its (name, in) parameters, `$ref`s followed."""
    found: dict[tuple[str, str], set[tuple[str, str]]] = {}
    refs = document.get("components", {}).get("parameters", {})
    for path, item in document["paths"].items():
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method not in ("get", "put", "post", "delete", "patch"):
                continue
            params = [
                refs[p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p
                for p in shared + operation.get("parameters", [])
            ]
            found[(method, path.rstrip("/"))] = {(p["name"], p["in"]) for p in params}
    return found


@pytest.mark.parametrize("spec", [POSTHOG, *SHARED_DOCS[1:3]], ids=lambda p: p.name)
def test_round_trip_through_the_exporter(tmp_path: Path, spec: Path) -> None:
    """Imported, then exported (engine/openapi/exporter.py): a valid OpenAPI 3.1 document with the same
    operations and parameters as the one imported."""
    shared_or_skip(spec)
    from naftiko.engine import export_openapi, rest_blocks

    path, _ = written(tmp_path, spec)
    capabilities = load_capabilities([path])
    exported = export_openapi(Runtime(capabilities, resolve_environment=False), rest_blocks(capabilities)[0])
    validator.validate(exported)
    original = _operations(YAML(typ="safe").load(spec.read_text()))
    assert _operations(exported) == original

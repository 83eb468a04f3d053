"""A real `naftiko serve` answers `/openapi.json` and a Swagger UI `/docs` page with its own assets (no CDN);
a capability's own `/openapi.json` route wins; a block's authentication guards both; `naftiko export
openapi` prints (or writes) a valid document."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate

from tests.support import ROOT, SEED, NaftikoProcess

CAPABILITY = """
naftiko: 1.0.0-alpha2
info: {label: Greetings, description: Mock answers only.}
binds:
  - namespace: env
    keys: {TOKEN: DOCS_TOKEN}
capability:
  exposes:
    - type: rest
      namespace: hello-rest
      port: 18180
      resources:
        - path: /greetings/{{who}}
          name: greetings
          operations:
            - method: GET
              name: greet
              inputParameters:
                - {name: who, in: path, type: string}
              outputParameters:
                - {name: text, type: string, value: "Hello, {{who}}!"}
                - {name: kind, type: string, value: greeting}
    - type: rest
      namespace: own-rest
      port: 18181
      resources:
        - path: /openapi.json
          operations:
            - method: GET
              outputParameters:
                - {name: mine, type: boolean, value: true}
    - type: rest
      namespace: guarded-rest
      port: 18182
      authentication: {type: bearer, token: "{{env.TOKEN}}"}
      resources:
        - path: /x
          operations:
            - method: GET
              outputParameters:
                - {name: ok, type: boolean, value: true}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    path = tmp_path_factory.mktemp("openapi") / "greetings.yaml"
    path.write_text(CAPABILITY)
    ports = [arg for ns in ("hello-rest", "own-rest", "guarded-rest") for arg in ("--port", f"{ns}=0")]
    process = NaftikoProcess([str(path), *ports], {"DOCS_TOKEN": "s3cret-token"})
    try:
        yield process.wait_for("hello-rest", "own-rest", "guarded-rest")
    finally:
        process.stop()


def test_openapi_json_is_valid_and_describes_what_the_route_answers(served: dict[str, str]) -> None:
    base = served["hello-rest"]
    response = httpx.get(f"{base}/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    validate(document)
    assert document["servers"] == [{"url": "/"}]  # "Try it out" calls whichever port served the document
    operation = document["paths"]["/greetings/{who}"]["get"]
    assert operation["operationId"] == "greet"
    schema = operation["responses"]["2XX"]["content"]["application/json"]["schema"]
    answer = httpx.get(f"{base}/greetings/ada")
    assert answer.status_code == 200
    assert answer.json() == {"text": "Hello, ada!", "kind": "greeting"}
    jsonschema.validate(answer.json(), schema)
    assert httpx.post(f"{base}/openapi.json").status_code == 405
    missing = httpx.get(f"{base}/docs/../../etc/passwd")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"


def test_docs_page_and_its_assets_come_from_this_process(served: dict[str, str]) -> None:
    base = served["hello-rest"]
    page = httpx.get(f"{base}/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<title>Greetings</title>" in page.text
    assert 'src="/docs/swagger-ui-bundle.js"' in page.text and 'data-spec="/openapi.json"' in page.text
    assert "http" not in page.text.split("<body>")[1]  # nothing fetched from another origin
    bundle = httpx.get(f"{base}/docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in bundle.text and len(bundle.content) > 500_000
    css = httpx.get(f"{base}/docs/swagger-ui.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    init = httpx.get(f"{base}/docs/init.js")
    assert init.status_code == 200 and "SwaggerUIBundle(" in init.text
    assert httpx.get(f"{base}/docs/swagger-ui-bundle.js.map").status_code == 404  # only the files listed


def test_a_capabilitys_own_route_wins(served: dict[str, str]) -> None:
    response = httpx.get(f"{served['own-rest']}/openapi.json")
    assert response.json() == {"mine": True}
    assert httpx.get(f"{served['own-rest']}/docs").status_code == 200  # /docs is still ours


def test_the_blocks_authentication_guards_the_document_and_the_page(served: dict[str, str]) -> None:
    base = served["guarded-rest"]
    assert httpx.get(f"{base}/openapi.json").status_code == 401
    assert httpx.get(f"{base}/docs").status_code == 401
    headers = {"Authorization": "Bearer s3cret-token"}
    document = httpx.get(f"{base}/openapi.json", headers=headers).json()
    validate(document)
    assert document["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    assert "s3cret-token" not in json.dumps(document)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "naftiko", "export", "openapi", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_prints_a_valid_document_for_the_seed() -> None:
    result = _cli(str(SEED))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    validate(document)
    assert "/v1/api/projects/{project-id}/tasks/{task-id}/runs/{id}" in document["paths"]


def test_cli_writes_a_file_and_asks_for_a_namespace_when_there_are_several(tmp_path: Path) -> None:
    path = tmp_path / "greetings.yaml"
    path.write_text(CAPABILITY)
    several = _cli(str(path))
    assert several.returncode == 2
    assert "hello-rest, own-rest, guarded-rest" in several.stderr and "Traceback" not in several.stderr
    out = tmp_path / "hello.json"
    written = _cli(str(path), "--namespace", "hello-rest", "-o", str(out))
    assert written.returncode == 0, written.stderr
    document = json.loads(out.read_text())
    validate(document)
    assert document["servers"] == [{"url": "http://localhost:18180"}]  # the block's own port
    broken = tmp_path / "broken.yaml"
    broken.write_text("naftiko: 1.0.0-alpha2\ncapability:\n  exposes: 3\n")
    failed = _cli(str(broken))
    assert failed.returncode == 1 and "broken.yaml:" in failed.stderr and "Traceback" not in failed.stderr

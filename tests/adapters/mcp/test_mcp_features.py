"""MCP resources, resource templates and prompts declared in a capability file, read by the
official SDK client from `naftiko serve` running as a process."""

from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Iterator

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from tests.support import RecordingUpstream, Reply

pytestmark = pytest.mark.anyio

CAPABILITY = """\
naftiko: "1.0.0-alpha2"
capability:
  exposes:
    - type: mcp
      port: 9096
      namespace: research-mcp
      description: Research data for release planning.
      tools:
        - name: query-database
          label: Query Database
          description: Committed participants.
          call: db-api.query-db
          with:
            datasource_id: test-db-id-123
          outputParameters:
            - type: array
              mapping: $.results
              items:
                type: object
                properties:
                  id:
                    type: string
                    mapping: $.id
      resources:
        - name: database-schema
          label: Database Schema
          uri: data://databases/pre-release/schema
          description: Schema of the participants database
          mimeType: application/json
          call: db-api.query-db
          with:
            datasource_id: schema-db
        - name: user-profile
          label: User Profile
          uri: data://users/{userId}/profile
          description: User profile by ID
          mimeType: application/json
          call: db-api.query-db
          with:
            datasource_id: "{{userId}}"
        - name: guides
          label: Guides
          uri: docs://guides
          description: Written guides
          mimeType: text/markdown
          location: file://GUIDES_DIR
      prompts:
        - name: participant-outreach
          label: Participant Outreach
          description: Draft outreach message
          arguments:
            - name: participant_name
              description: Name of the participant
            - name: format
              description: Output format
              required: false
          template:
            - role: user
              content: "Write to {{participant_name}} in {{format}} form."
            - role: assistant
              content: "Sure."
  consumes:
    - type: http
      namespace: db-api
      baseUri: http://localhost:1
      inputParameters:
        - name: Content-Type
          in: header
          value: application/json
      resources:
        - path: databases/{{datasource_id}}/query
          name: query
          operations:
            - method: POST
              name: query-db
              body: '{"filter": {"status": "Committed"}}'
"""


@pytest.fixture
def mcp_url(tmp_path: Path, upstream: RecordingUpstream, naftiko) -> Iterator[str]:
    guides = tmp_path / "guides"
    guides.mkdir()
    (guides / "intro.md").write_text("# Intro\n")
    path = tmp_path / "research.yaml"
    path.write_text(CAPABILITY.replace("GUIDES_DIR", str(guides)))
    process = naftiko(str(path), "--base-uri", f"db-api={upstream.url}", "--port", "research-mcp=0")
    yield process.wait_for("research-mcp")["research-mcp"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_tool_output_mapping_and_fixed_with(mcp_url: str, upstream: RecordingUpstream, mode: str) -> None:
    upstream.reply(
        "POST", "/databases/test-db-id-123/query", Reply(json={"results": [{"id": "a", "x": 1}, {"id": "b"}]})
    )
    async with Client(mcp_url, mode=mode, cache=None) as mcp:
        (tool,) = (await mcp.list_tools()).tools
        assert tool.title == "Query Database" and tool.annotations.title == "Query Database"
        assert tool.input_schema == {"type": "object", "properties": {}, "additionalProperties": False}
        result = await mcp.call_tool("query-database", {})
    assert json.loads(result.content[0].text) == [{"id": "a"}, {"id": "b"}]
    assert upstream.last.headers["content-type"] == "application/json"
    assert json.loads(upstream.last.body) == {"filter": {"status": "Committed"}}


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_resources_templates_and_reads(mcp_url: str, upstream: RecordingUpstream, mode: str) -> None:
    upstream.reply("POST", "/databases/u-42/query", Reply(json={"name": "Ada"}))
    async with Client(mcp_url, mode=mode, cache=None) as mcp:
        assert mcp.server_capabilities.resources is not None and mcp.server_capabilities.prompts is not None
        listed = (await mcp.list_resources()).resources
        assert [(r.name, str(r.uri), r.title) for r in listed] == [
            ("database-schema", "data://databases/pre-release/schema", "Database Schema"),
            ("guides", "docs://guides", "Guides"),
        ]
        templates = (await mcp.list_resource_templates()).resource_templates
        assert [(t.name, t.uri_template) for t in templates] == [("user-profile", "data://users/{userId}/profile")]
        profile = await mcp.read_resource("data://users/u-42/profile")
        assert json.loads(profile.contents[0].text) == {"name": "Ada"}
        assert profile.contents[0].mime_type == "application/json"
        guide = await mcp.read_resource("docs://guides/intro.md")
        assert guide.contents[0].text == "# Intro\n"
        with pytest.raises(MCPError) as escaped:  # a path out of the served folder is an unknown resource
            await mcp.read_resource("docs://guides/../../etc/passwd")
        # -32002 in the handshake era, -32602 in 2026-07-28 (which `auto` negotiates here)
        assert escaped.value.error.code == (-32002 if mode == "legacy" else -32602)
        assert "Resource not found" in escaped.value.error.message


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_prompts(mcp_url: str, mode: str) -> None:
    async with Client(mcp_url, mode=mode, cache=None) as mcp:
        (prompt,) = (await mcp.list_prompts()).prompts
        assert prompt.title == "Participant Outreach"
        assert [(a.name, a.required) for a in prompt.arguments] == [("participant_name", True), ("format", False)]
        got = await mcp.get_prompt("participant-outreach", {"participant_name": "Nina"})
        assert [(m.role, m.content.text) for m in got.messages] == [
            ("user", "Write to Nina in {{format}} form."),
            ("assistant", "Sure."),
        ]
        with pytest.raises(Exception, match="participant_name"):
            await mcp.get_prompt("participant-outreach", {})

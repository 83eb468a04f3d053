"""Unit tests of single engine pieces: templates, parameter scope, `with`, output mapping,
bindings. End-to-end behaviour is tested over real HTTP elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from naftiko.engine.bindings import resolve
from naftiko.engine.errors import CapabilityError, Location
from naftiko.engine.spec.loader import load_file
from naftiko.engine.calls.outputs import compile_outputs
from naftiko.engine.registry.params import CALLER_PREFIXES, Scope, WithRules, with_aliases
from naftiko.engine.spec.model import OutputParameter
from naftiko.engine.templates import MISSING, MissingValue, Template

HERE = Location("test.yaml")


def scope(params: dict, bindings: dict | None = None) -> Scope:
    return Scope(bindings or {}, with_aliases(params), CALLER_PREFIXES | {"shop-rest"})


@pytest.mark.parametrize(
    "source,expected",
    [
        ("/ships/{{imo}}", "/ships/IMO-1"),
        ("{{ env.KEY }}", "secret"),
        ("<<env.KEY>>", "secret"),
        ("{{KEY}}", "secret"),
        ("{{voyage-id}}", "V-9"),
        ("{{crew}}|{{flag}}|{{ship.name}}|{{nothing}}", '["a","b"]|true|Star|'),
        ("{{tools.imo}} {{shop-rest.imo}}", "IMO-1 IMO-1"),
        ("{{#crew}}<{{.}}>{{/crew}}{{^nothing}}none{{/nothing}}", "<a><b>none"),
        ("a{{! a comment }}b", "ab"),
    ],
)
def test_templates_render_like_mustache(source: str, expected: str) -> None:
    values = scope(
        {"imo": "IMO-1", "voyage-id": "V-9", "crew": ["a", "b"], "flag": True, "ship": {"name": "Star"}},
        {"KEY": "secret", "env.KEY": "secret"},
    )
    assert Template.compile(source).render(values) == expected


def test_single_brace_paths_and_strict_rendering() -> None:
    template = Template.compile("/p/{project_id}/t/{{task_id}}", single_braces=True)
    assert template.names == ("project_id", "task_id")
    assert (
        template.render(scope({"project-id": "7", "task_id": "x y"}), encode=lambda v: v.replace(" ", "%20"))
        == "/p/7/t/x%20y"
    )
    with pytest.raises(MissingValue) as caught:
        template.render(scope({"task_id": "1"}), strict=True)
    assert caught.value.name == "project_id"


def test_bindings_win_over_caller_parameters() -> None:
    assert scope({"KEY": "from-caller"}, {"KEY": "secret"}).get("KEY") == "secret"


def test_with_rules() -> None:
    rules = WithRules(
        {
            "limit": "rest.limit",
            "task": "tools.task_id",
            "imo": "{{ship}}",
            "n": 3,
            "word": "plain.literal",
            "gone": "mcp.absent",
        },
        ["shop-rest"],
    )
    params = with_aliases({"limit": "5", "task-id": "T", "ship": {"imo": 1}})
    result = rules.apply(params, scope(params))
    assert result["limit"] == "5" and result["task"] == "T" and result["n"] == 3
    assert result["imo"] == {"imo": 1}, "a lone {{name}} keeps the value's type"
    assert result["word"] == "plain.literal"
    assert "gone" not in result
    assert rules.references() == {"limit": "limit", "task": "task_id", "gone": "absent"}


def out(type_: str, **kw) -> OutputParameter:
    return OutputParameter(type=type_, where=HERE, **kw)


def test_object_with_mapping_and_no_properties_passes_the_node_through() -> None:
    body = {"id": 1, "nested": {"a": [1, 2]}}
    assert compile_outputs([out("object", mapping="$.")])(body, scope({})) == body
    assert compile_outputs([out("object", mapping="$.nested")])(body, scope({})) == {"a": [1, 2]}


def test_nested_object_mapping_keeps_the_root_and_numbers() -> None:
    """The reference engine's NestedObjectOutputMappingIntegrationTest case."""
    outputs = [
        out(
            "object",
            properties={
                "imo": out("string", mapping="$.imo_number"),
                "name": out("string", mapping="$.vessel_name"),
                "status": out("string", mapping="$.operational_status"),
                "specs": out(
                    "object",
                    properties={
                        "yearBuilt": out("number", mapping="$.year_built"),
                        "tonnage": out("number", mapping="$.gross_tonnage"),
                        "length": out("number", mapping="$.dimensions.length_overall"),
                    },
                ),
            },
        )
    ]
    body = {
        "imo_number": "IMO-9321483",
        "vessel_name": "Northern Star",
        "operational_status": "active",
        "year_built": 2015,
        "gross_tonnage": 42000,
        "dimensions": {"length_overall": 229},
    }
    assert compile_outputs(outputs)(body, scope({})) == {
        "imo": "IMO-9321483",
        "name": "Northern Star",
        "status": "active",
        "specs": {"yearBuilt": 2015, "tonnage": 42000, "length": 229},
    }


def test_array_items_are_rerooted_and_first_non_null_wins() -> None:
    outputs = [
        out("array", mapping="$.missing"),
        out("array", mapping="$.ships", items=out("object", properties={"code": out("string", mapping="$.id")})),
    ]
    shaped = compile_outputs(outputs)({"ships": [{"id": "V1"}, {"id": "V2"}]}, scope({}))
    assert shaped == [{"code": "V1"}, {"code": "V2"}]


def test_mock_values_render_against_the_caller() -> None:
    mapper = compile_outputs([out("object", properties={"message": out("string", value="Hello, {{name}}!")})])
    assert mapper(None, scope({"name": "Nina"})) == {"message": "Hello, Nina!"}


def write_capability(folder: Path, binds: str) -> Path:
    path = folder / "cap.yaml"
    path.write_text("naftiko: 1.0.0-alpha2\nbinds:\n" + binds + "capability:\n  exposes: []\n")
    return path


def test_bindings_from_environment_flat_and_qualified(tmp_path: Path) -> None:
    capability = load_file(write_capability(tmp_path, "  - namespace: env\n    keys:\n      API_KEY: MY_VAR\n"))
    assert resolve(capability, {"MY_VAR": "s3cret"}) == {"API_KEY": "s3cret", "env.API_KEY": "s3cret"}


def test_missing_environment_variable_names_it_and_the_file(tmp_path: Path) -> None:
    capability = load_file(write_capability(tmp_path, "  - namespace: env\n    keys:\n      API_KEY: MY_VAR\n"))
    with pytest.raises(CapabilityError) as caught:
        resolve(capability, {})
    message = str(caught.value)
    assert "MY_VAR" in message and "cap.yaml" in message and message.startswith(f"{tmp_path / 'cap.yaml'}:3:5")


def test_bindings_from_a_file_next_to_the_capability(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secrets.yaml").write_text("token: abc\nport: 5\n")
    monkeypatch.chdir("/")
    capability = load_file(
        write_capability(
            tmp_path,
            "  - namespace: vault\n    location: file://./secrets.yaml\n"
            "    keys:\n      TOKEN: token\n      PORT: port\n",
        )
    )
    assert resolve(capability, {}) == {"TOKEN": "abc", "vault.TOKEN": "abc", "PORT": "5", "vault.PORT": "5"}


def test_binding_file_key_missing(tmp_path: Path) -> None:
    (tmp_path / "secrets.json").write_text('{"other": 1}')
    capability = load_file(
        write_capability(
            tmp_path,
            "  - namespace: vault\n    location: file:///"
            + str(tmp_path / "secrets.json").lstrip("/")
            + "\n    keys:\n      TOKEN: token\n",
        )
    )
    with pytest.raises(CapabilityError, match="key 'token' \\(for TOKEN\\) not found in .*secrets.json"):
        resolve(capability, {})


def test_missing_sentinel_is_not_a_value() -> None:
    assert scope({}).get("nothing") is MISSING

"""Loading: a broken capability file names the file, line, column and key path."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from naftiko.engine import CapabilityError, Runtime, load_capabilities
from naftiko.engine.spec.loader import load_file

GOOD = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: {ns}
      baseUri: https://api.example.com
      resources:
        - name: items
          path: /items
          operations:
            - name: list-items
              method: GET
  exposes:
    - type: rest
      namespace: {ns}-rest
      port: 8080
      resources:
        - path: /items
          operations:
            - method: GET
              call: {ns}.list-items
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(CapabilityError) as caught:
        load_file(path)
    return [str(p) for p in caught.value.problems]


def test_a_good_file_becomes_a_typed_model(tmp_path: Path) -> None:
    capability = load_file(write(tmp_path, "a.yaml", GOOD.format(ns="shop")))
    consumes = capability.consumes[0]
    assert consumes.namespace == "shop" and consumes.base_uri == "https://api.example.com"
    assert consumes.resources[0].operations[0].method == "GET"
    assert capability.exposes[0].port == 8080


def test_missing_key_names_file_line_column_and_key_path(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", GOOD.format(ns="shop").replace("          path: /items\n", ""))
    assert problems(path) == [
        f"{path}:8:11: missing required key 'path' (a string) (at capability.consumes[0].resources[0].path)"
    ]


def test_wrong_value_says_what_would_be_right(tmp_path: Path) -> None:
    text = GOOD.format(ns="shop").replace("method: GET\n  exposes", "method: FETCH\n  exposes")
    path = write(tmp_path, "a.yaml", text.replace("port: 8080", "port: eighty"))
    found = problems(path)
    assert (
        f"{path}:12:23: 'method' must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS; got 'FETCH'"
        " (at capability.consumes[0].resources[0].operations[0].method)" in found
    )
    assert (
        f"{path}:16:13: 'port' must be an integer from 1 to 65535; got 'eighty' (at capability.exposes[0].port)"
    ) in found


def test_base_uri_with_trailing_slash_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", GOOD.format(ns="shop").replace("api.example.com", "api.example.com/v1/"))
    assert problems(path) == [
        f"{path}:6:16: 'baseUri' must not end with '/'; write 'https://api.example.com/v1'"
        " (at capability.consumes[0].baseUri)"
    ]


def test_yaml_syntax_error_has_a_position(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "naftiko: 1.0.0-alpha2\ncapability: [unclosed\n")
    (message,) = problems(path)
    assert message.startswith(f"{path}:3:1: not valid YAML")


def test_unknown_keys_warn_but_load(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = GOOD.format(ns="shop").replace("      baseUri:", "      retries: 3\n      baseUri:")
    capability = load_file(write(tmp_path, "a.yaml", text))
    assert capability.warnings == (
        f"{tmp_path / 'a.yaml'}:6:7: unknown key 'retries' is ignored (at capability.consumes[0].retries)",
    )
    with caplog.at_level(logging.WARNING):
        Runtime([capability])
    assert "unknown key 'retries'" in caplog.text


def test_same_namespace_in_two_files_names_both(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", GOOD.format(ns="shop"))
    second = write(tmp_path, "b.yaml", GOOD.format(ns="shop"))
    with pytest.raises(CapabilityError) as caught:
        load_capabilities([tmp_path])
    message = str(caught.value)
    assert str(first) in message and str(second) in message
    assert "namespace 'shop' is already declared" in message


def test_a_folder_loads_only_capability_documents(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD.format(ns="one"))
    write(tmp_path, "b.yml", GOOD.format(ns="two"))
    write(tmp_path, "notes.yaml", "title: not a capability\n")
    write(tmp_path, "readme.md", "# hi\n")
    loaded = load_capabilities([tmp_path])
    assert [c.consumes[0].namespace for c in loaded] == ["one", "two"]

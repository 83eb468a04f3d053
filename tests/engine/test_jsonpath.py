"""JSONPath results have Jayway's shape (the reference engine's library): one value for a definite
path, a list otherwise, decided on the parsed path and never on its text, so a quoted key holding
`:`, `,` or `*` is one key."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from naftiko.engine.errors import JsonPathError, NaftikoError
from naftiko.engine.jsonpath import compile_path

DOC: dict[str, Any] = {
    "dc:title": "Moby-Dick",
    "a,b": "comma",
    "*": "star",
    "a.b": "dot",
    "x y": "space",
    "a]b": "bracket",
    "a": 1,
    "b": 2,
    "book": [{"title": "T1", "price": 8, "isbn": "1"}, {"title": "T2", "price": 12}, "loose"],
    "store": {"bicycle": {"color": "red"}, "dc:name": {"en": "Shop"}},
}


@pytest.mark.parametrize(
    "path, expected",
    [
        ("$['dc:title']", "Moby-Dick"),
        ("$['a,b']", "comma"),
        ("$['*']", "star"),  # a quoted star is a key, not a wildcard
        ('$["*"]', "star"),
        ("$['a.b']", "dot"),
        ("$['x y']", "space"),
        ("$['a]b']", "bracket"),
        ("$.store['dc:name'].en", "Shop"),
        ("$['store']['dc:name']['en']", "Shop"),
        ("$.book[0]['title']", "T1"),
        ("$.book[-1]", "loose"),
        ("$['nothing:here']", None),
        ("$['dc:title'].deeper", None),  # a key of a string: nothing, not an error
    ],
)
def test_a_quoted_key_is_one_value(path: str, expected: Any) -> None:
    assert compile_path(path)(DOC) == expected


@pytest.mark.parametrize(
    "path, expected",
    [
        ("$['a','b']", {"a": 1, "b": 2}),  # keys listed at the end: Jayway merges them into one object
        ("$['a','missing']", {"a": 1}),  # absent keys are left out, as Jayway leaves them
        ("$['dc:title','a,b']", {"dc:title": "Moby-Dick", "a,b": "comma"}),
        ("$.book[0]['title','price']", {"title": "T1", "price": 8}),
        ("$['a','b'].deeper", []),  # listed keys before the end iterate: a list
        ("$.book[*]['title','isbn']", [{"title": "T1", "isbn": "1"}, {"title": "T2"}]),  # a merge per object
        ("$.a['x','y']", None),  # listed keys of a number: nothing
    ],
)
def test_listed_keys_merge_at_the_end_of_a_path(path: str, expected: Any) -> None:
    assert compile_path(path)(DOC) == expected


@pytest.mark.parametrize(
    "path, expected",
    [
        ("$.*", list(DOC.values())),
        ("$[*]", list(DOC.values())),
        ("$.book[*].title", ["T1", "T2"]),
        ("$.book[0,1].price", [8, 12]),  # an index list
        ("$.book[0:1]", [DOC["book"][0]]),  # a slice
        ("$..color", ["red"]),  # recursion
        ("$.book[?(@.price > 10)].title", ["T2"]),  # a filter
        ("$.book[?(@.price > 99)].title", []),  # an indefinite path with no match is an empty list
    ],
)
def test_indefinite_paths_give_a_list(path: str, expected: Any) -> None:
    assert compile_path(path)(DOC) == expected


@pytest.mark.parametrize("path", ["$", "$.", " $ "])
def test_the_root_is_the_whole_document(path: str) -> None:
    assert compile_path(path)(DOC) is DOC


def test_an_invalid_path_is_a_typed_error() -> None:
    with pytest.raises(JsonPathError, match="invalid JSONPath") as caught:
        compile_path("$[?(@.a ==")
    assert isinstance(caught.value, NaftikoError) and isinstance(caught.value, ValueError)


_KEY = st.text(st.characters(blacklist_characters="'\\", blacklist_categories=("Cs",)), min_size=1, max_size=12)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(key=_KEY, other=_KEY, value=st.integers() | st.text(max_size=5))
def test_any_quoted_key_reads_exactly_that_key(key: str, other: str, value: Any) -> None:
    document = {key: value, other: "other"} if other != key else {key: value}
    assert compile_path(f"$['{key}']")(document) == value
    assert compile_path(f"$['{key}']")({"unrelated": 1}) is None
    expected = {key: value, other: "other"} if other != key else {key: value}
    assert compile_path(f"$['{key}','{other}']")(document) == expected

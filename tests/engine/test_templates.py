"""Mustache templates: sections are our own small tree (capability text never runs as code of
another engine), a broken section is a TemplateError at compile time, and renders are bounded."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from naftiko.engine.errors import RequestError
from naftiko.engine.templates import MAX_SECTION_DEPTH, MAX_SECTION_ITEMS, MISSING, Template, TemplateError


class Values:
    def __init__(self, **values: Any) -> None:
        self.values = values

    def get(self, name: str) -> Any:
        return self.values.get(name, MISSING)


def render(source: str, **values: Any) -> str:
    return Template.compile(source).render(Values(**values))


def test_literal_jinja_syntax_is_text_not_code() -> None:
    """The issue-12 case rendered 'xxx': the raw/endraw escape let a for loop run."""
    source = "{{#t}}{% endraw %}{% for i in range(3) %}x{% endfor %}{% raw %}{{/t}}"
    assert render(source, t=True) == "{% endraw %}{% for i in range(3) %}x{% endfor %}{% raw %}"
    assert (
        render("{{#t}}{{ 7*7 }}|{# c #}|{%- if 1 -%}y{%- endif -%}{{/t}}", t=True)
        == "|{# c #}|{%- if 1 -%}y{%- endif -%}"
    )
    assert (
        render("{{#t}}{{x}}{{/t}}", t=True, x="{% for i in range(3) %}x{% endfor %}")
        == "{% for i in range(3) %}x{% endfor %}"
    ), "values are text too"


def test_section_names_are_names_not_expressions() -> None:
    assert render("{{#a'b}}in{{/a'b}}", **{"a'b": [1, 2]}) == "inin"
    assert render("{{#x) %}}y{{/x) %}}", **{"x) %": [1]}) == "y"
    assert render("{{#t}}{{x) }}{{/t}}", t=True) == "", "an odd name is just a name with no value"


@pytest.mark.parametrize(
    "source,values,expected",
    [
        ("{{#items}}{{name}}, {{/items}}", {"items": [{"name": "a"}, {"name": "b"}]}, "a, b, "),
        ("{{#items}}<{{.}}>{{/items}}", {"items": ["a", "b"]}, "<a><b>"),
        ("{{#user}}{{name}} of {{team}}{{/user}}", {"user": {"name": "Ann"}, "team": "ops"}, "Ann of ops"),
        ("{{#flag}}on{{/flag}}{{^flag}}off{{/flag}}", {"flag": False}, "off"),
        ("{{#flag}}on{{/flag}}{{^flag}}off{{/flag}}", {"flag": True}, "on"),
        ("{{^items}}none{{/items}}", {"items": []}, "none"),
        ("{{#missing}}x{{/missing}}{{^missing}}y{{/missing}}", {}, "y"),
        ("{{#a}}{{#b}}{{.}}{{/b}}{{/a}}", {"a": {"b": [1, 2]}}, "12"),
        ("{{#a}}{{n}}{{! hidden }}{{/a}}", {"a": [{"n": True}, {"n": [1, "x"]}]}, 'true[1,"x"]'),
        ("x{{ #a }}{{ v }}{{ /a }}y<<k>>", {"a": [{"v": 1}], "k": "K"}, "x1yK"),
    ],
)
def test_sections_render_like_mustache(source: str, values: dict[str, Any], expected: str) -> None:
    assert render(source, **values) == expected


@pytest.mark.parametrize(
    "source,message",
    [
        ("{{#items}}{{name}}", r"'\{\{#items\}\}' at character 1 is never closed; add '\{\{/items\}\}'"),
        ("{{/a}}", r"'\{\{/a\}\}' at character 1 closes a section that was never opened"),
        (
            "{{#a}}x{{/b}}",
            r"'\{\{/b\}\}' at character 8 closes '\{\{#a\}\}' \(opened at character 1\); write '\{\{/a\}\}'",
        ),
        ("{{^a}}{{#b}}{{/a}}{{/b}}", r"closes '\{\{#b\}\}'"),
        ("ok {{#}}x{{/}}", r"needs a section name"),
    ],
)
def test_broken_sections_are_template_errors(source: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        Template.compile(source)


def test_section_depth_is_bounded_at_compile_time() -> None:
    deep = "".join(f"{{{{#s{i}}}}}" for i in range(MAX_SECTION_DEPTH)) + "".join(
        f"{{{{/s{i}}}}}" for i in reversed(range(MAX_SECTION_DEPTH))
    )
    Template.compile(deep)
    with pytest.raises(TemplateError, match=f"nested more than {MAX_SECTION_DEPTH} deep"):
        Template.compile("{{#x}}" + deep + "{{/x}}")


def test_one_render_expands_a_bounded_number_of_section_items() -> None:
    """Sections nested over one list would render len**depth items: the budget stops it."""
    template = Template.compile("{{#a}}{{#a}}{{#a}}.{{/a}}{{/a}}{{/a}}")
    assert template.render(Values(a=list(range(10)))) == "." * 1000
    with pytest.raises(RequestError, match=f"more than {MAX_SECTION_ITEMS} items"):
        template.render(Values(a=list(range(100))))


def test_paths_cannot_hold_sections() -> None:
    with pytest.raises(TemplateError, match="a path cannot hold Mustache sections"):
        Template.compile("/users/{{#id}}{id}{{/id}}", single_braces=True)
    assert Template.compile("/users/{id}/{{x}}", single_braces=True).names == ("id", "x")


def test_plain_templates_stay_a_list_of_parts() -> None:
    """The hot path: no tree, literal text and names alternating, as before."""
    template = Template.compile("/users/{{id}}?q={{env.KEY}}&r={{voyage-id}}")
    assert template.parts == ("/users/", "id", "?q=", "env.KEY", "&r=", "voyage-id", "")
    assert template.render(Values(id="7", **{"env.KEY": "k", "voyage-id": "v"})) == "/users/7?q=k&r=v"
    assert Template.compile("{{ a }}").single_name == "a"
    assert Template.compile("{{#a}}{{/a}}").single_name is None
    assert Template.compile("{% raw %}{{x}}").render(Values(x=1)) == "{% raw %}1"


_PIECES = st.sampled_from(
    [
        "{{#a}}",
        "{{/a}}",
        "{{^a}}",
        "{{#b}}",
        "{{/b}}",
        "{{x}}",
        "{{.}}",
        "{{{y}}}",
        "{{!c}}",
        "{{",
        "}}",
        "{%",
        "%}",
        "{% raw %}",
        "{% endraw %}",
        "{#",
        "<<k>>",
        "{z}",
        "text",
        " ",
        "\n",
        "{{&x}}",
        "{{ #a }}",
        "{{/}}",
        "é",
    ]
)


@settings(derandomize=True, max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=14), st.sampled_from([[], [1, 2], {"x": "v"}, True, False, "s", None]))
def test_any_template_compiles_or_raises_template_error_and_renders_as_text(pieces: list[str], value: Any) -> None:
    source = "".join(pieces)
    try:
        template = Template.compile(source)
    except TemplateError:
        return
    text = template.render(Values(a=value, b=[value], x="X", y="Y", k="K"))
    assert isinstance(text, str)
    if "{{" not in source and "<<" not in source:
        assert text == source, "text with no tags is its own rendering"

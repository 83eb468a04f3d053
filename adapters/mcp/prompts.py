"""A capability's MCP prompts: how each is listed and rendered.

A prompt's messages are its `template` (role and text pairs) or the text of the file at its
`location`, one user message; `{{name}}` placeholders take the call's arguments, and an
unknown placeholder is left as written.
"""

from __future__ import annotations

import re
from typing import Any
from collections.abc import Iterable

from ...engine import Prompt

from .backend import INVALID_PARAMS, McpError, McpPrompt, McpPromptArgument
from .resources import file_path

__all__ = ["mcp_prompt", "render"]


def mcp_prompt(prompt: Prompt) -> McpPrompt:
    """How `prompt` is listed: its name, description and arguments."""
    return McpPrompt(
        name=prompt.name,
        description=prompt.description,
        title=prompt.label,
        arguments=tuple(McpPromptArgument(a.name, a.description, a.label, a.required) for a in prompt.arguments),
    )


def render(prompt: Prompt, arguments: dict[str, str]) -> dict[str, Any]:
    """The prompts/get result of `prompt` called with `arguments`."""
    name = prompt.name
    missing = [a.name for a in prompt.arguments if a.required and a.name not in arguments]
    if missing:
        raise McpError(INVALID_PARAMS, f"Missing required argument(s) for prompt {name}: {', '.join(missing)}")
    messages = [
        {"role": role, "content": {"type": "text", "text": _substitute(content, arguments)}}
        for role, content in _prompt_messages(prompt)
    ]
    result: dict[str, Any] = {"messages": messages}
    if prompt.description:
        result["description"] = prompt.description
    return result


_PLACEHOLDER = re.compile(r"\{\{([a-zA-Z0-9_]+)\}\}")


def _substitute(text: str, arguments: dict[str, str]) -> str:
    """Prompt arguments: `{{name}}` only, unknown placeholders left as written."""
    return _PLACEHOLDER.sub(lambda m: str(arguments[m.group(1)]) if m.group(1) in arguments else m.group(0), text)


def _prompt_messages(prompt: Prompt) -> Iterable[tuple[str, str]]:
    if prompt.template:
        return prompt.template
    if prompt.location:
        path = file_path(prompt.location)
        try:
            return [("user", path.read_text(encoding="utf-8"))]
        except OSError as exc:
            raise McpError(INVALID_PARAMS, f"prompt {prompt.name} cannot read its file: {exc.strerror}") from None
    return []

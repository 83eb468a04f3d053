"""Run-creation options shared by ``POST tasks/{id}/run/`` and ``POST tasks/{id}/runs/``.

Validates the cloud-runtime selection the way the real serializers do (adapter +
model required together, reasoning effort per model, permission modes per
adapter) and turns the request into the initial ``state`` bag of a new run.
"""

from __future__ import annotations

from typing import Any

from .errors import ApiError, detail_error, envelope, validation_error
from .store import Store, Task, canonical_uuid
from .validation import MISSING, Reader

MODES = ("interactive", "background")
ENVIRONMENTS = ("local", "cloud")
PR_AUTHORSHIP_MODES = ("user", "bot")
RUN_SOURCES = ("manual", "signal_report")
RUNTIME_ADAPTERS = ("claude", "codex")
PERMISSION_MODES = {
    "claude": ("default", "acceptEdits", "plan", "bypassPermissions", "auto"),
    "codex": ("auto", "read-only", "full-access"),
}
# Fields a resumed run inherits from the run it resumes when the request omits them.
INHERITED_STATE = ("runtime_adapter", "provider", "model", "reasoning_effort")
PROVIDERS = {"claude": "anthropic", "codex": "openai"}


def supported_efforts(adapter: str, model: str) -> tuple[str, ...]:
    """Opus-class Claude models add ``xhigh``/``max``; everything else is low/medium/high."""
    if adapter == "claude" and "opus" in model:
        return ("low", "medium", "high", "xhigh", "max")
    return ("low", "medium", "high")


def read_run_options(body: Reader, *, task_run: bool) -> dict[str, Any]:
    """Field-by-field validation in declaration order; only present fields are returned."""
    fields: dict[str, Any] = {}
    if not task_run:
        fields["environment"] = body.choice("environment", ENVIRONMENTS)
    fields["mode"] = body.choice("mode", MODES)
    fields["branch"] = body.string("branch", nullable=True, max_length=255)
    if task_run:
        fields["resume_from_run_id"] = body.uuid("resume_from_run_id", nullable=True)
        fields["pending_user_message"] = body.string("pending_user_message", nullable=True)
        fields["pending_user_artifact_ids"] = body.string_list("pending_user_artifact_ids")
    fields["sandbox_environment_id"] = body.uuid("sandbox_environment_id", nullable=True)
    fields["pr_authorship_mode"] = body.choice("pr_authorship_mode", PR_AUTHORSHIP_MODES, nullable=True)
    fields["run_source"] = body.choice("run_source", RUN_SOURCES, nullable=True)
    fields["signal_report_id"] = body.string("signal_report_id", nullable=True)
    fields["runtime_adapter"] = body.choice("runtime_adapter", RUNTIME_ADAPTERS, nullable=True)
    fields["model"] = body.string("model", nullable=True, max_length=255)
    fields["reasoning_effort"] = body.choice(
        "reasoning_effort", ("low", "medium", "high", "xhigh", "max", "ultracode"), nullable=True
    )
    fields["github_user_token"] = body.string("github_user_token", nullable=True)
    fields["initial_permission_mode"] = body.string("initial_permission_mode", nullable=True)
    options = {k: v for k, v in fields.items() if v is not MISSING and v is not None}
    message = options.pop("pending_user_message", "").strip()
    if message:
        options["pending_user_message"] = message
    _check_runtime(options)
    return options


def _check_runtime(options: dict[str, Any]) -> None:
    adapter, model, effort = options.get("runtime_adapter"), options.get("model"), options.get("reasoning_effort")
    if adapter or model or effort:
        for name, value in (("runtime_adapter", adapter), ("model", model)):
            if not value:
                raise validation_error("This field is required when selecting a cloud runtime.", name)
        supported = supported_efforts(adapter, model)
        if effort and effort not in supported:
            raise validation_error(
                f"Reasoning effort '{effort}' is not supported for runtime_adapter '{adapter}' and model "
                f"'{model}'. Supported values: {', '.join(supported)}",
                "reasoning_effort",
            )
    permission = options.get("initial_permission_mode")
    if permission:
        if not adapter:
            raise validation_error("initial_permission_mode requires runtime_adapter.", "initial_permission_mode")
        if permission not in PERMISSION_MODES[adapter]:
            raise validation_error(
                f"Unsupported initial_permission_mode '{permission}' for runtime_adapter '{adapter}'. "
                f"Supported values: {', '.join(PERMISSION_MODES[adapter])}",
                "initial_permission_mode",
            )


def check_references(store: Store, task: Task, options: dict[str, Any]) -> None:
    """400s for ids the stand-in cannot honour: foreign resume runs, sandbox envs, staged uploads."""
    resume_id = options.get("resume_from_run_id")
    if resume_id:
        previous = store.runs.get(canonical_uuid(resume_id) or "")
        if previous is None or previous.task_id != task.id:
            raise detail_error(400, "Invalid resume_from_run_id")
    if options.get("sandbox_environment_id"):
        raise detail_error(400, "Invalid sandbox_environment_id")
    staged = options.get("pending_user_artifact_ids") or []
    if staged:
        # No staging endpoint exists here, so every staged id is unknown.
        raise detail_error(
            400, "Some pending_user_artifact_ids are invalid or expired", missing_artifact_ids=list(staged)
        )
    if options.get("pr_authorship_mode") == "user" and options.get("run_source") != "signal_report":
        if not options.get("github_user_token"):
            raise ApiError(
                400,
                envelope(
                    "validation_error",
                    "github_authorization_required",
                    "Connect your GitHub account to author pull requests as yourself.",
                    "pr_authorship_mode",
                ),
            )


def inherit_from_previous(store: Store, options: dict[str, Any]) -> None:
    """A resumed run keeps the runtime selection and branch of the run it resumes."""
    previous = store.runs.get(options.get("resume_from_run_id") or "")
    if previous is None:
        return
    for name in INHERITED_STATE:
        if name not in options and name in previous.state:
            options[name] = previous.state[name]
    if "branch" not in options and previous.branch:
        options["branch"] = previous.branch


def initial_state(options: dict[str, Any]) -> dict[str, Any]:
    """The state bag ``Task.create_run`` writes for a new run."""
    state: dict[str, Any] = {"mode": options.get("mode", "background")}
    if options.get("branch"):
        state["pr_base_branch"] = options["branch"]
    if options.get("run_source") == "signal_report":
        options["pr_authorship_mode"] = "bot"
    copied = (
        "pr_authorship_mode",
        "run_source",
        "signal_report_id",
        "runtime_adapter",
        "model",
        "reasoning_effort",
        "initial_permission_mode",
        "pending_user_message",
        "resume_from_run_id",
        "sandbox_environment_id",
    )
    state.update({name: options[name] for name in copied if options.get(name) is not None})
    if options.get("runtime_adapter"):
        state["provider"] = PROVIDERS[options["runtime_adapter"]]
    if options.get("github_user_token"):
        state["github_credential_source"] = "caller_token"
    return state

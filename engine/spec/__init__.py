"""Capability files into the spec model: reading YAML, building the typed model, checking it.

`load_capabilities` (`loader.load`) is the whole stage, in flow order: `reading` turns a file into
YAML data with positions (`blockyaml` is its fast reader for plain block YAML, proven equal to
ruamel.yaml by a differential test); the builders `consumed` and `exposed` read that data through
`fields.Map` into `model`, the plain typed data everything downstream reads; `checks` compiles
what the runtime compiles later and checks entries against each other. Every problem of every
file is collected, positioned (file, line, column, key path) and raised as one `CapabilityError`.
"""

from .loader import expand_paths, load_file
from .loader import load as load_capabilities
from .reading import READ_LIMITS, ReadLimits, read_document
from .model import (
    GREEDY_VARIABLE,
    PATH_VARIABLE,
    Aggregate,
    AggregateFunction,
    Authentication,
    Binding,
    Capability,
    ConsumedOperation,
    ConsumedResource,
    Consumes,
    ConsumesImport,
    ExposedOperation,
    ExposedResource,
    Exposes,
    Forward,
    Info,
    InputParameter,
    Invocation,
    McpExposes,
    OtherExposes,
    OutputParameter,
    Prompt,
    PromptArgument,
    Resource,
    RestExposes,
    Semantics,
    Skill,
    SkillExposes,
    SkillTool,
    Step,
    StepMapping,
    Tool,
    ToolHints,
    ToolParameter,
    path_segments,
    route_shape,
)

__all__ = [
    "load_capabilities", "load_file", "read_document", "expand_paths", "ReadLimits", "READ_LIMITS",
    "PATH_VARIABLE", "GREEDY_VARIABLE", "path_segments", "route_shape", "Binding", "InputParameter",
    "OutputParameter", "Authentication", "ConsumedOperation", "ConsumedResource", "Consumes", "ConsumesImport",
    "Step", "StepMapping", "Invocation", "ExposedOperation", "Forward", "ExposedResource", "RestExposes",
    "ToolHints", "ToolParameter", "Tool", "Resource", "PromptArgument", "Prompt", "McpExposes", "SkillTool",
    "Skill", "SkillExposes", "OtherExposes", "Exposes", "Semantics", "AggregateFunction", "Aggregate", "Info",
    "Capability",
]

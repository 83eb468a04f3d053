"""The operation registry: every consumed operation compiled once and addressable as `ns.op`.

`operations` compiles a consumed operation (its parameter plan, body and credentials) so that
preparing a request is a walk over small tuples; `params` is the parameter map of one call and
the `with` rules that fill it, shared with the exposed calls.
"""

from .operations import Forwarder, Operation, OperationParameter, Registry
from .params import CALLER_PREFIXES, Scope, WithRules, lookup, with_aliases

__all__ = ["Registry", "Operation", "OperationParameter", "Forwarder", "Scope", "WithRules", "CALLER_PREFIXES",
           "lookup", "with_aliases"]

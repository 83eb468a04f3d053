"""The operation registry: every consumed operation compiled once and addressable as `ns.op`.

`operations` compiles a consumed operation so that preparing a request (`upstream.Prepared`) is a
walk over small tuples, from top to bottom:

    operations    Registry, Operation, Forwarder: the parameter plan, where each value goes
    bodies        the declared `body` in every form of the spec, rendered per call
    credentials   bearer, basic and API-key credentials, rendered per call
    params        the parameter map of one call and the `with` rules that fill it (shared with the calls)
"""

from .operations import Forwarder, Operation, OperationParameter, Registry
from .params import CALLER_PREFIXES, Scope, WithRules, lookup, with_aliases

__all__ = [
    "Registry",
    "Operation",
    "OperationParameter",
    "Forwarder",
    "Scope",
    "WithRules",
    "CALLER_PREFIXES",
    "lookup",
    "with_aliases",
]

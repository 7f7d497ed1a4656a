"""Stop conditions: end a simulation cleanly at the frame where the monitor sees something.

A hook's ``stop_when`` is a callable on the frame's
:class:`~icemon.execution.pipeline.Result` (true: stop), or a short expression:

>>> "largest_cluster >= 300"                       # a nucleus of 300 molecules
>>> "fraction('liquid') > 0.99"                    # the seed has melted
>>> "largest('Ic') > 100 and step > 50000"

Names: ``largest_cluster`` (molecules in the largest ice cluster), ``n_clusters`` (clusters
of at least the rule's ``min_size``), ``step``, ``time`` (ps), ``molecules``; functions of a
phase name of the model (or ``'ice'``, every ice together): ``fraction(p)``, ``count(p)``,
``largest(p)`` (the largest cluster of that ice phase alone; ice phases only); numbers, comparisons, ``and``,
``or``, ``not``, ``+ - * /``. Anything else, or a phase the model does not have, is refused
when the hook is attached, before the run.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Sequence
from typing import Any

from icemon.errors import ConfigError
from icemon.geometry.clusters import ClusterRule
from icemon.phases import LIQUID_NAME, UNKNOWN_NAME

NAMES = ("largest_cluster", "n_clusters", "step", "time", "molecules")
FUNCTIONS = ("fraction", "count", "largest")
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
            ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv}


class StopWhen:
    """A stop condition, checked on every logged frame (:mod:`icemon.hooks.stop`).

    Args:
        condition: an expression (module docstring) or a callable on a Result.
        phases: the model's phase names (checked against the expression's).
        rule: the cluster rule behind ``largest_cluster``, ``n_clusters``, ``largest``."""

    def __init__(self, condition: str | Callable[[Any], bool], phases: Sequence[str],
                 rule: ClusterRule | None = None) -> None:
        self.phases = tuple(phases)
        self.rule = rule or ClusterRule()
        if callable(condition):
            self._tree = None
            self._call = condition
            self.reason = getattr(condition, "__name__", repr(condition))
        elif isinstance(condition, str):
            try:
                self._tree = ast.parse(condition.strip(), mode="eval").body
            except SyntaxError as exc:
                raise ConfigError(f"stop_when {condition!r} is not an expression: {exc.msg}") \
                    from exc
            self._check(self._tree, condition)
            self._call = None
            self.reason = condition.strip()
        else:
            raise ConfigError(f"stop_when must be an expression (str) or a callable, not "
                              f"{type(condition).__name__}")

    def _check(self, node: ast.AST, text: str) -> None:
        """Refuse anything but the names, functions and operators listed above."""
        def bad(what: str) -> ConfigError:
            return ConfigError(f"stop_when {text!r}: {what}; allowed: {', '.join(NAMES)}, "
                               f"{', '.join(f + '(phase)' for f in FUNCTIONS)}, numbers, "
                               "comparisons, and/or/not, + - * /")

        if isinstance(node, ast.Compare):
            if not all(type(op) in _COMPARE for op in node.ops):
                raise bad("an unsupported comparison")
            for child in (node.left, *node.comparators):
                self._check(child, text)
        elif isinstance(node, ast.BoolOp):
            for child in node.values:
                self._check(child, text)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            self._check(node.operand, text)
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            self._check(node.left, text)
            self._check(node.right, text)
        elif isinstance(node, ast.Name):
            if node.id not in NAMES:
                raise bad(f"unknown name {node.id!r}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            pass
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "id", None)
            if name not in FUNCTIONS or len(node.args) != 1 or node.keywords \
                    or not isinstance(node.args[0], ast.Constant) \
                    or not isinstance(node.args[0].value, str):
                raise bad(f"{ast.unparse(node)} is not one of "
                          f"{', '.join(f + '(phase)' for f in FUNCTIONS)}")
            phase = node.args[0].value
            if phase != "ice" and phase not in self.phases:
                raise bad(f"{phase!r} is not a phase of this model ({', '.join(self.phases)}, "
                          "or 'ice')")
            if name == "largest" and phase in (LIQUID_NAME, UNKNOWN_NAME):
                raise bad(f"largest({phase!r}): clusters are of ice; largest() takes an ice "
                          "phase or 'ice'")
        else:
            raise bad(f"{ast.unparse(node)!r} is not allowed")

    def __call__(self, result: Any) -> bool:
        """Whether the frame's ``result`` meets the condition."""
        if self._call is not None:
            return bool(self._call(result))
        return bool(self._value(self._tree, result))

    def _value(self, node: ast.AST, result: Any) -> Any:
        if isinstance(node, ast.Compare):
            left = self._value(node.left, result)
            for op, right_node in zip(node.ops, node.comparators):
                right = self._value(right_node, result)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.BoolOp):
            values = (self._value(v, result) for v in node.values)
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.UnaryOp):
            value = self._value(node.operand, result)
            return (not value) if isinstance(node.op, ast.Not) else -value
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](self._value(node.left, result),
                                          self._value(node.right, result))
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id == "largest_cluster":
                return result.clusters(self.rule).largest
            if node.id == "n_clusters":
                return result.clusters(self.rule).n_clusters
            if node.id == "step":
                return int(result.frame.step)
            if node.id == "time":
                return float(result.frame.time)
            return len(result.labels)  # molecules
        name, phase = node.func.id, node.args[0].value  # an ast.Call (checked)
        if phase == "ice":
            mask = result.ice
        else:
            mask = result.labels == self.phases.index(phase)
        if name == "count":
            return int(mask.sum())
        if name == "fraction":
            return float(mask.mean())
        clusters = result.clusters(self.rule)  # largest
        if phase == "ice":
            return clusters.largest
        return int(clusters.largest_by_phase[self.phases.index(phase)])


def as_condition(condition: str | Callable[[Any], bool] | None, phases: Sequence[str],
                 rule: ClusterRule | None = None) -> StopWhen | None:
    """A :class:`StopWhen` of ``condition`` (None: none)."""
    return None if condition is None else StopWhen(condition, phases, rule)



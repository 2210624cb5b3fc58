"""A small, safe expression language over branches (awkward arrays).

Physicists write cuts the way TMVA and TTree::Draw read them (``nJet >= 2 && lep_pt > 25``)
or in Python/NumPy style (``(nJet >= 2) & (lep_pt > 25)``). Expressions are parsed with
:mod:`ast` and evaluated against a whitelist of NumPy/awkward functions; nothing else of
Python is reachable. Branch names that are not identifiers (``jet1_b-tag``) are written in
backticks: ```jet1_b-tag` > 0.5``.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import awkward as ak
import numpy as np

from hepclf.errors import InputDataError


def _reduce(fn: Callable[..., Any]) -> Callable[[Any], Any]:
    """Reduce the innermost (per-event object) axis; empty lists give NaN where undefined."""

    def reduced(x: Any) -> Any:
        out = fn(x, axis=-1)
        return ak.fill_none(out, np.nan) if isinstance(out, ak.Array) else out

    return reduced


def _delta_phi(a: Any, b: Any) -> Any:
    return (a - b + np.pi) % (2 * np.pi) - np.pi


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sum": _reduce(ak.sum),
    "max": _reduce(ak.max),
    "min": _reduce(ak.min),
    "mean": _reduce(ak.mean),
    "prod": _reduce(ak.prod),
    "any": _reduce(ak.any),
    "all": _reduce(ak.all),
    "num": lambda x: ak.num(x, axis=-1),
    "count": lambda x: ak.num(x, axis=-1),
    "abs": np.abs,
    "sqrt": np.sqrt,
    "exp": np.exp,
    "log": np.log,
    "log10": np.log10,
    "log1p": np.log1p,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "arcsin": np.arcsin,
    "arccos": np.arccos,
    "arctan": np.arctan,
    "arctan2": np.arctan2,
    "atan2": np.arctan2,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "hypot": np.hypot,
    "where": np.where,
    "minimum": np.minimum,
    "maximum": np.maximum,
    "floor": np.floor,
    "ceil": np.ceil,
    "isnan": np.isnan,
    "clip": np.clip,
    "delta_phi": _delta_phi,
}
CONSTANTS = {"pi": np.pi, "e": np.e, "True": True, "False": False}

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitAnd: np.logical_and,
    ast.BitOr: np.logical_or,
    ast.BitXor: np.logical_xor,
}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_BACKTICK = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its source text, syntax tree and the branches it reads."""

    source: str
    tree: ast.Expression
    branches: frozenset[str]
    aliases: tuple[tuple[str, str], ...]

    def evaluate(self, arrays: Mapping[str, Any]) -> Any:
        """Evaluate against a mapping of branch name -> array (awkward or NumPy)."""
        names = dict(self.aliases)
        try:
            return _Evaluator(arrays, names).visit(self.tree.body)
        except InputDataError:
            raise
        except Exception as err:  # awkward/numpy errors: broadcasting, types, empty lists
            raise InputDataError(
                f"the expression {self.source!r} failed: {type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}. Check that the branches it "
                "combines have matching lengths per event and that reductions such as sum(...) "
                "are applied to jagged branches."
            ) from None


def _translate(source: str) -> tuple[str, dict[str, str]]:
    """Rewrite ROOT-style operators and backtick names into parseable Python."""
    aliases: dict[str, str] = {}

    def alias(match: re.Match[str]) -> str:
        key = f"__branch{len(aliases)}__"
        aliases[key] = match.group(1)
        return key

    text = _BACKTICK.sub(alias, source)
    text = text.replace("&&", " and ").replace("||", " or ")
    text = re.sub(r"!(?!=)", " not ", text)
    return text, aliases


@lru_cache(maxsize=1024)
def parse(source: str) -> Expression:
    """Parse and check an expression once; errors name the expression and the problem."""
    text, aliases = _translate(source)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise InputDataError(
            f"the expression {source!r} is not valid: {err.msg}. Use Python/NumPy or ROOT "
            "syntax, e.g. 'nJet >= 2 && lep_pt > 25'; quote branch names that are not "
            "identifiers in backticks, e.g. '`jet1_b-tag` > 0.5'."
        ) from None
    branches: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                raise InputDataError(
                    f"the expression {source!r} calls {name!r}, which is not available; "
                    f"available functions: {', '.join(sorted(FUNCTIONS))}"
                )
        elif isinstance(node, ast.Name) and node.id not in CONSTANTS:
            is_call = any(isinstance(p, ast.Call) and p.func is node for p in ast.walk(tree))
            if not is_call:
                branches.add(aliases.get(node.id, node.id))
        elif isinstance(node, ast.Attribute | ast.Lambda | ast.Starred | ast.NamedExpr):
            raise InputDataError(
                f"the expression {source!r} uses {type(node).__name__.lower()} syntax, "
                "which expressions do not allow"
            )
    return Expression(source, tree, frozenset(branches), tuple(aliases.items()))


class _Evaluator(ast.NodeVisitor):
    def __init__(self, arrays: Mapping[str, Any], aliases: dict[str, str]) -> None:
        self.arrays = arrays
        self.aliases = aliases

    def generic_visit(self, node: ast.AST) -> Any:
        raise InputDataError(f"unsupported syntax in expression: {ast.unparse(node)!r}")

    def visit_Constant(self, node: ast.Constant) -> Any:
        if not isinstance(node.value, int | float | bool):
            raise InputDataError(f"only numbers are allowed as constants, got {node.value!r}")
        return node.value

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        return self.arrays[self.aliases.get(node.id, node.id)]

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        op = _BINARY.get(type(node.op))
        if op is None:
            return self.generic_visit(node)
        return op(self.visit(node.left), self.visit(node.right))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.UAdd):
            return value
        return np.logical_not(value)  # Not, Invert

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        values = [self.visit(v) for v in node.values]
        result = values[0]
        for value in values[1:]:
            result = combine(result, value)
        return result

    def visit_Compare(self, node: ast.Compare) -> Any:
        left = self.visit(node.left)
        result = None
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            fn = _COMPARE.get(type(op))
            if fn is None:
                return self.generic_visit(node)
            right = self.visit(comparator)
            step = fn(left, right)
            result = step if result is None else np.logical_and(result, step)
            left = right
        return result

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return np.where(self.visit(node.test), self.visit(node.body), self.visit(node.orelse))

    def visit_Call(self, node: ast.Call) -> Any:
        assert isinstance(node.func, ast.Name)  # checked in parse()
        args = [self.visit(a) for a in node.args]
        return FUNCTIONS[node.func.id](*args)

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        return self.visit(node.value)[self.visit(node.slice)]

    def visit_Slice(self, node: ast.Slice) -> Any:
        parts = (node.lower, node.upper, node.step)
        return slice(*(None if p is None else self.visit(p) for p in parts))

    def visit_Tuple(self, node: ast.Tuple) -> Any:
        return tuple(self.visit(e) for e in node.elts)

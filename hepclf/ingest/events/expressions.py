"""A small, safe expression language over branches (awkward arrays).

Physicists write cuts the way TMVA and TTree::Draw read them (``nJet >= 2 && lep_pt > 25``)
or in Python/NumPy style (``(nJet >= 2) & (lep_pt > 25)``). Expressions are parsed with
:mod:`ast` and evaluated against a whitelist of NumPy/awkward functions; nothing else of
Python is reachable. Branch names that are not identifiers (``jet1_b-tag``) are written in
backticks: ```jet1_b-tag` > 0.5``.

Expressions come from YAML files and from HTTP requests, so :func:`parse` also refuses
what cannot be computed in reasonable time and memory before anything runs: texts longer
than :data:`MAX_LENGTH`, nesting deeper than :data:`MAX_DEPTH`, and constant arithmetic
outside 64-bit integers (``9**9**8`` would hold the interpreter for minutes). Arrays are
NumPy/awkward, of fixed width, so only constant subexpressions need this bound.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from hepclf.ingest.events.functions import CONSTANTS, EMPTY_REDUCTIONS, FUNCTIONS
from hepclf.runtime.errors import InputDataError

MAX_LENGTH = 2000
"""Longest expression text, in characters."""
MAX_DEPTH = 100
"""Deepest syntax tree: nested calls, parentheses and operator chains."""
INT64_MAX = 2**63 - 1
"""Largest integer a constant may have or reach: ROOT branches hold at most 64 bits."""


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

    def evaluate(self, arrays: Mapping[str, Any], empty: float = np.nan) -> Any:
        """Evaluate against a mapping of branch name -> array (awkward or NumPy).

        ``empty`` is what ``max``/``min``/``mean`` give for an event with an empty list.
        """
        names = dict(self.aliases)
        try:
            return _Evaluator(arrays, names, empty).visit(self.tree.body)
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


def _refuse(source: str, problem: str) -> InputDataError:
    shown = source if len(source) <= 200 else source[:200] + "..."
    return InputDataError(f"the expression {shown!r} {problem}")


@lru_cache(maxsize=1024)
def parse(source: str) -> Expression:
    """Parse and check an expression once; errors name the expression and the problem.

    Everything that can be refused is refused here, before any data is read: syntax,
    unknown functions, disallowed syntax, and work without bound (see the module notes).
    """
    if len(source) > MAX_LENGTH:
        raise _refuse(
            source,
            f"has {len(source):,} characters; expressions may have at most {MAX_LENGTH:,}. "
            "Split it into several features, or compute it in a friend tree.",
        )
    if "\x00" in source:
        raise _refuse(source, "contains a NUL byte; remove it")
    text, aliases = _translate(source)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise InputDataError(
            f"the expression {source!r} is not valid: {err.msg}. Use Python/NumPy or ROOT "
            "syntax, e.g. 'nJet >= 2 && lep_pt > 25'; quote branch names that are not "
            "identifiers in backticks, e.g. '`jet1_b-tag` > 0.5'."
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise _refuse(source, f"is nested too deeply; at most {MAX_DEPTH} levels") from None
    _check_depth(source, tree)
    called: set[int] = set()
    branches: set[str] = set()
    for node in ast.walk(tree):
        _check_node(source, node)
        if isinstance(node, ast.Call):
            called.add(id(node.func))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in CONSTANTS and id(node) not in called:
            branches.add(aliases.get(node.id, node.id))
    _fold(source, tree.body)
    return Expression(source, tree, frozenset(branches), tuple(aliases.items()))


_ALLOWED = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.Subscript,
    ast.Slice,
    ast.Tuple,
    ast.Name,
    ast.Constant,
    ast.Load,
    ast.operator,
    ast.unaryop,
    ast.boolop,
    ast.cmpop,
)


def _check_depth(source: str, tree: ast.AST) -> None:
    """Refuse trees deeper than MAX_DEPTH (iteratively: a deep tree must not recurse)."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _refuse(
                source,
                f"is nested too deeply; at most {MAX_DEPTH} levels of calls, "
                "parentheses or operators",
            )
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _check_node(source: str, node: ast.AST) -> None:
    """One node: only the syntax the evaluator implements, numbers of bounded size."""
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise _refuse(
                source,
                f"calls {name!r}, which is not available; available functions: "
                f"{', '.join(sorted(FUNCTIONS))}",
            )
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise _refuse(
                source,
                f"passes keyword or starred arguments to {node.func.id!r}; give "
                "positional arguments only",
            )
    elif isinstance(node, ast.Constant):
        value = node.value
        if type(value) not in (int, float, bool):
            raise _refuse(source, f"holds the constant {value!r}; only numbers are allowed")
        if type(value) is int and abs(value) > INT64_MAX:
            raise _refuse(
                source,
                f"holds the integer {_short(value)}, beyond 64-bit integers; "
                "write it as a float (e.g. 1e30) if a large number is meant",
            )
        if type(value) is float and not np.isfinite(value):
            raise _refuse(source, "holds a number too large for a float (it reads as inf)")
    elif isinstance(node, ast.BinOp) and type(node.op) not in _BINARY:
        raise _refuse(source, f"uses the operator in {ast.unparse(node)!r}, which is not allowed")
    elif isinstance(node, ast.Compare) and any(type(op) not in _COMPARE for op in node.ops):
        raise _refuse(source, f"uses 'in' or 'is' in {ast.unparse(node)!r}; compare with == or !=")
    elif not isinstance(node, _ALLOWED):
        raise _refuse(
            source, f"uses {type(node).__name__.lower()} syntax, which expressions do not allow"
        )


def _short(value: int) -> str:
    digits = str(abs(value)) if value.bit_length() < 4000 else ""
    if digits and len(digits) <= 30:
        return str(value)
    return f"with {len(digits)} digits" if digits else f"of {value.bit_length()} bits"


def _fold(source: str, node: ast.AST) -> Any:
    """The value of a constant subexpression (None if it reads branches), kept within
    64-bit integers: Python integers have no width, so ``9**9**8`` would be computed exactly,
    for minutes, holding the interpreter lock. Array arithmetic has a fixed width."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return CONSTANTS.get(node.id)
    if isinstance(node, ast.UnaryOp):
        value = _fold(source, node.operand)
        if value is None or not isinstance(node.op, ast.USub | ast.UAdd):
            return None
        return -value if isinstance(node.op, ast.USub) else value
    children = [_fold(source, child) for child in ast.iter_child_nodes(node)]
    if not isinstance(node, ast.BinOp):
        return None
    left, right = children[0], children[-1]
    if left is None or right is None:
        return None
    text = ast.unparse(node)
    integers = type(left) is int and type(right) is int  # floats overflow to inf, no hang
    bits = right * np.log2(abs(left)) if integers and right > 0 and abs(left) > 1 else 0
    if isinstance(node.op, ast.Pow) and bits > 63:
        raise _refuse(
            source,
            f"computes {text!r}, a number beyond 64-bit integers (about 2**{bits:.3g}); "
            "use a float (e.g. 1e30) or a smaller power",
        )
    try:
        with np.errstate(all="raise"):
            value = _BINARY[type(node.op)](left, right)
    except (ArithmeticError, FloatingPointError) as err:
        raise _refuse(source, f"cannot compute {text!r}: {err}") from None
    if type(value) is int and abs(value) > INT64_MAX:
        raise _refuse(source, f"computes {text!r}, an integer beyond 64 bits; use a float")
    if isinstance(value, float) and not np.isfinite(value):
        raise _refuse(source, f"computes {text!r}, which is too large for a float")
    return value


class _Evaluator(ast.NodeVisitor):
    def __init__(self, arrays: Mapping[str, Any], aliases: dict[str, str], empty: float) -> None:
        self.arrays = arrays
        self.aliases = aliases
        self.empty = empty

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
        if node.func.id in EMPTY_REDUCTIONS:
            return FUNCTIONS[node.func.id](*args, empty=self.empty)
        return FUNCTIONS[node.func.id](*args)

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        return self.visit(node.value)[self.visit(node.slice)]

    def visit_Slice(self, node: ast.Slice) -> Any:
        parts = (node.lower, node.upper, node.step)
        return slice(*(None if p is None else self.visit(p) for p in parts))

    def visit_Tuple(self, node: ast.Tuple) -> Any:
        return tuple(self.visit(e) for e in node.elts)

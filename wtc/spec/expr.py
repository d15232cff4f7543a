"""Safe expressions for block templates: `width * expansion`, `stride != 1 or in_channels != width`.

Templates are data, not code: only arithmetic, comparisons, boolean logic, conditionals and a few
pure functions over the block's parameters are allowed (min, max, int, round, ceil, floor and
MobileNet's `make_divisible(value, divisor[, min_value])`). Parsed once, checked for unknown names
at load time, evaluated at compile time.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
from collections.abc import Mapping
from typing import Any

from wtc.spec.rounding import make_divisible

_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
_CMPOPS = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}


def _make_divisible(value: float, divisor: float, min_value: float | None = None) -> int:
    """MobileNet's channel rounding, as torchvision's `_make_divisible` (`wtc.spec.rounding`)."""
    if isinstance(divisor, bool) or divisor != int(divisor) or not 1 <= divisor <= 65_536:
        raise ExprError(f"make_divisible's divisor must be a whole number from 1 to 65,536, "
                        f"got {divisor}")
    if min_value is not None and min_value < 0:
        raise ExprError(f"make_divisible's min_value must not be negative, got {min_value}")
    return make_divisible(value, int(divisor), None if min_value is None else int(min_value))


_FUNCS = {"min": min, "max": max, "int": int, "round": round, "ceil": math.ceil,
          "floor": math.floor, "make_divisible": _make_divisible}
# how many arguments each function takes: (fewest, most)
_ARITY = {"min": (1, 16), "max": (1, 16), "int": (1, 1), "round": (1, 2), "ceil": (1, 1),
          "floor": (1, 1), "make_divisible": (2, 3)}
# every intermediate value stays a plain number of bounded size: no string arithmetic
# ("'a' * 10**12"), no powers, no numbers beyond 10**15 (channel counts are at most 65,536)
MAX_MAGNITUDE = 10**15


class ExprError(ValueError):
    """An expression that does not parse, names an unknown parameter, or fails to evaluate."""


_ALLOWED = "allowed: arithmetic (+ - * / // %), comparisons, and/or/not, x if c else y, " \
    "min/max/int/round/ceil/floor/make_divisible"
# what a refused construct is called in a message (the node type alone misleads)
_WORDS = {"Pow": "the power operator **", "ListComp": "a list comprehension",
          "SetComp": "a set comprehension", "DictComp": "a dict comprehension",
          "GeneratorExp": "a generator expression", "Subscript": "indexing or slicing [...]",
          "Attribute": "attribute access (.)", "Lambda": "a lambda", "List": "a list [...]",
          "Tuple": "a tuple", "Dict": "a dict {...}", "Set": "a set {...}",
          "JoinedStr": "an f-string", "NamedExpr": "the := operator", "Starred": "*unpacking",
          "Await": "await", "Yield": "yield", "MatMult": "the operator @",
          "LShift": "the operator <<", "RShift": "the operator >>", "BitOr": "the operator |",
          "BitAnd": "the operator &", "BitXor": "the operator ^", "In": "the operator in",
          "NotIn": "the operator not in", "Is": "the operator is", "IsNot": "the operator is not",
          "Call": "a call of a function that is not min/max/int/round (or with keywords)"}


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> ast.expr:
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as e:
        raise ExprError(f"'{_clip(text)}' is not a valid expression: {e.msg}") from None
    except (MemoryError, RecursionError):
        raise ExprError(f"'{_clip(text)}' is nested too deeply to read") from None
    except ValueError as e:  # e.g. a NUL byte
        raise ExprError(f"'{_clip(text)}' is not a valid expression: {e}") from None
    for node in ast.walk(tree):
        ok = isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare,
                               ast.Name, ast.Constant, ast.IfExp, ast.Call, ast.Load,
                               ast.operator, ast.unaryop, ast.boolop, ast.cmpop))
        what = type(node).__name__
        if isinstance(node, ast.Call):
            ok = isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords
            if ok:
                lo, hi = _ARITY[node.func.id]
                if not lo <= len(node.args) <= hi:
                    raise ExprError(f"'{_clip(text)}': {node.func.id} takes {lo}"
                                    f"{'' if lo == hi else f' to {hi}'} argument(s), got "
                                    f"{len(node.args)}")
        if isinstance(node, ast.BinOp):
            ok, what = type(node.op) in _BINOPS, type(node.op).__name__
        if isinstance(node, ast.Compare):
            bad = [op for op in node.ops if type(op) not in _CMPOPS]
            ok, what = not bad, type(bad[0]).__name__ if bad else what
        if not ok:
            part = ast.get_source_segment(text, node) or text
            where = f"'{_clip(part)}'" + (f" (in '{_clip(text)}')" if part != text else "")
            raise ExprError(f"{where} uses {_WORDS.get(what, what)}; {_ALLOWED}")
    return tree


def names(text: str) -> set[str]:
    """Parameter names an expression reads (function names excluded)."""
    tree = parse(text)
    funcs = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - funcs


def evaluate(value: Any, env: Mapping[str, Any]) -> Any:
    """Evaluate a template field: non-strings are literals, strings are expressions over `env`."""
    if not isinstance(value, str):
        return value
    try:
        return _eval(parse(value), env)
    except ExprError:
        raise
    except Exception as e:
        raise ExprError(f"'{_clip(value)}' failed: {e}") from None


def _eval(node: ast.expr, env: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return _bounded(node.value)
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise ExprError(f"unknown name '{node.id}'; known: {', '.join(sorted(env))}")
        return env[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _number(_eval(node.left, env)), _number(_eval(node.right, env))
        return _bounded(_BINOPS[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, env)
        if isinstance(node.op, ast.Not):
            return not v
        return _bounded({ast.USub: operator.neg, ast.UAdd: operator.pos}[type(node.op)](
            _number(v)))
    if isinstance(node, ast.BoolOp):
        vals = (_eval(v, env) for v in node.values)
        return all(vals) if isinstance(node.op, ast.And) else any(vals)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, env)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, env) else node.orelse, env)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        args = [_number(_eval(a, env)) for a in node.args]
        if node.func.id == "round" and len(args) == 2:
            args[1] = max(-20, min(20, int(args[1])))
        return _bounded(_FUNCS[node.func.id](*args))
    raise ExprError(f"unsupported expression node {type(node).__name__}")


def _number(value: Any) -> int | float:
    """Arithmetic and functions take numbers (true/false count as 1/0), never text."""
    if not isinstance(value, (int, float)):
        raise ExprError(f"arithmetic on {type(value).__name__} {_short(value)}; only numbers "
                        "can be computed with")
    return value


def _bounded(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ExprError(f"the result {value} is not a finite number")
    if isinstance(value, (int, float)) and abs(value) > MAX_MAGNITUDE:
        raise ExprError(f"a value beyond ±{MAX_MAGNITUDE:.0e} (channel counts are far smaller)")
    return value


def _clip(text: str) -> str:
    return text if len(text) <= 80 else text[:79] + "…"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"

"""Where tracegrad bounds its work: every limit, in one place.

A typed expression, a SymPy expression handed to the engine and the dimensions of the command
line are each checked against these before any unbounded work starts, and refused with a
one-line message naming the limit.  ``docs/guide.md`` ("Limits") lists them for users.

* programs (:mod:`derive.program`): :data:`MAX_PROGRAM_LENGTH`, :data:`MAX_PROGRAM_STATEMENTS`, and each
  statement as a typed expression;
* the parser (:mod:`derive.parse`): :data:`MAX_LENGTH`, :data:`MAX_NESTING`,
  :data:`MAX_LITERAL_DIGITS`, :data:`MAX_TANH_DEPTH`, :data:`MAX_NUMBER_DIGITS` (and through :func:`power_digits` the size
  of a power of a number);
* the engine (:mod:`derive.engine`): :data:`MAX_NUMBER_DIGITS` and :func:`power_digits` on the
  expression it is given, :data:`MAX_FUNCTION_DEPTH` and :data:`MAX_TANH_DEPTH` on its nesting, :data:`MAX_EQUATION_NODES`
  on every equation of the derivation, :data:`MAX_STEPS`; :data:`MAX_MATRIX_POWER` in
  :mod:`derive.differential`;
* the command line (:mod:`derive.cli`): :data:`MAX_DIMENSION` for ``--dims``, and
  :data:`MAX_CHECK_ENTRIES` for the matrices of the closing gradient check
  (:mod:`derive.render.checks`);
* the checker (:mod:`derive.check`): :data:`CHECK_MAX_BITS`, :data:`CHECK_MAX_ENTRIES`,
  :data:`CHECK_MAX_DIM`, and through the parser the size of numbers.
"""
from __future__ import annotations

import math

import sympy
from sympy import Basic, MatPow
from sympy.matrices.expressions.hadamard import HadamardPower

__all__ = [
    "CHECK_MAX_BITS",
    "CHECK_MAX_DIM",
    "CHECK_MAX_ENTRIES",
    "MAX_CHECK_ENTRIES",
    "MAX_DIMENSION",
    "MAX_EQUATION_NODES",
    "MAX_EVALUATED_DIGITS",
    "MAX_FUNCTION_DEPTH",
    "MAX_LENGTH",
    "MAX_LITERAL_DIGITS",
    "MAX_MATRIX_POWER",
    "MAX_NESTING",
    "MAX_NUMBER_BITS",
    "MAX_NUMBER_DIGITS",
    "MAX_PROGRAM_LENGTH",
    "MAX_PROGRAM_STATEMENTS",
    "MAX_STEPS",
    "MAX_TANH_DEPTH",
    "LimitError",
    "check_numbers",
    "digits_text",
    "function_depth",
    "number_bits",
    "power_digits",
    "power_refusal",
    "size_exceeds",
]

# --- the expression language (derive.parse) -------------------------------------------------------
MAX_LENGTH = 2_000
"""Characters of a typed expression (SymPy's canonicalisers are quadratic in a flat sum)."""
MAX_NESTING = 100
"""Depth of a typed expression's syntax tree (brackets, operators, function calls)."""
MAX_PROGRAM_LENGTH = 20_000
"""Characters of a program (derive.program): declarations, assignments and comments."""
MAX_PROGRAM_STATEMENTS = 200
"""Declarations and assignments of a program (each stage is a section of the derivation)."""
MAX_LITERAL_DIGITS = 300
"""Digits of a number literal, and the size of its exponent (``1e300``)."""

# --- numbers, wherever they arise ----------------------------------------------------------------
MAX_NUMBER_DIGITS = 1_000
"""Decimal digits of an exact number a literal, product or power may make (Python prints at most
4,300; a power like ``(2*c)^(10^8)`` would otherwise compute a number of 30 million digits)."""
MAX_NUMBER_BITS = math.ceil(MAX_NUMBER_DIGITS * math.log2(10))
MAX_EVALUATED_DIGITS = 100_000
"""Digits of a power whose exponent holds dimensions (``2^(n*d)``), with the dimensions at
:data:`CHECK_MAX_DIM`: the checker evaluates it exactly at its draws' dimensions."""

# --- the engine (derive.engine, derive.differential) ---------------------------------------------
MAX_FUNCTION_DEPTH = 20
"""Functions nested inside one another (σ(σ(…)), inv(A + inv(…)), exp, log, powers …) in a
function given to the engine: each level copies the levels inside it into the differential."""
MAX_TANH_DEPTH = 4
"""tanh nested inside tanh (through any other operations): SymPy's tanh asks its argument's
assumptions in time exponential in that nesting (5 levels: seconds, 8: minutes); the parser and
the engine refuse more."""
MAX_EQUATION_NODES = 6_000
"""Size (SymPy tree nodes) of one equation of a derivation; a staged derivation
(``derive.backprop`` over a ``derive.Network``) keeps each equation small."""
MAX_STEPS = 400
"""Steps of one derivation."""
MAX_MATRIX_POWER = 100
"""|p| of an integer matrix power A^p: its product rule writes p terms."""

# --- the command line (derive.cli) ----------------------------------------------------------------
MAX_DIMENSION = 10**15
"""A numeric dimension given with ``--dims``."""
MAX_CHECK_ENTRIES = 1_000_000
"""Entries of any matrix of the closing gradient check (``derive.render.checks``); with larger
``--dims`` the check is skipped and the output says why."""

# --- the checker (derive.check), which evaluates answers in interval arithmetic in Python ---------
CHECK_MAX_BITS = 16384
"""The most bits of precision an answer is evaluated with; one still undecided is "not confirmed"."""
CHECK_MAX_ENTRIES = 20_000
"""Entries of the matrices of one draw (a larger ``--dims`` is refused)."""
CHECK_MAX_DIM = 64
"""A numeric dimension the checker accepts."""


class LimitError(ValueError):
    """An input whose evaluation or expansion would exceed one of the limits above."""

    __module__ = "derive.limits"


def _rational_bits(x: sympy.Rational) -> int:
    return max(abs(x.p).bit_length(), abs(x.q).bit_length())


# Matrices whose arguments are a name and a shape, not numbers of the expression.
_SHAPED_LEAVES = (sympy.MatrixSymbol, sympy.OneMatrix, sympy.Identity, sympy.ZeroMatrix)


def _numbers(e: Basic) -> list[sympy.Rational]:
    """The exact numbers of ``e``, not counting the dimensions of its matrices."""
    out, stack, seen = [], [e], set()
    while stack:
        node = stack.pop()
        if isinstance(node, sympy.Rational):
            out.append(node)
        elif not isinstance(node, _SHAPED_LEAVES) and id(node) not in seen:
            seen.add(id(node))
            stack.extend(node.args)
    return out


def _has_integer_symbol(e: Basic) -> bool:
    """Whether ``e`` holds an integer symbol outside the shapes of its matrices."""
    stack = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, sympy.Symbol) and node.is_integer:
            return True
        if not isinstance(node, _SHAPED_LEAVES):
            stack.extend(node.args)
    return False


def number_bits(e: Basic) -> int:
    """The bits of the largest exact number (numerator or denominator) in ``e`` (the
    dimensions of its matrices do not count).

    >>> c, X = sympy.Symbol("c"), sympy.MatrixSymbol("X", 4000, 3)
    >>> number_bits(1000 * c + sympy.Rational(1, 3)), number_bits(c * X)
    (10, 0)
    """
    return max((_rational_bits(x) for x in _numbers(e)), default=0)


def _log2(x: sympy.Rational) -> float:
    """log2 of the larger of |numerator| and denominator (0 for 0 and ±1)."""
    big = max(abs(x.p), abs(x.q))
    return math.log2(big) if big > 1 else 0.0


def _exponent_size(exponent: Basic) -> tuple[float, int] | None:
    """(|exponent| as a float, inf when huge; the digit limit that applies), or None where the size
    depends on data.  An exponent that holds dimensions (2^(n·d), 2^(n^100)) is taken at
    dimensions of CHECK_MAX_DIM, the most an evaluation substitutes, against MAX_EVALUATED_DIGITS."""
    if not isinstance(exponent, sympy.Expr):
        return None
    if exponent.is_Number:
        value, limit = exponent, MAX_NUMBER_DIGITS
    else:
        free = exponent.free_symbols
        if not free or not all(isinstance(x, sympy.Symbol) and x.is_integer for x in free):
            return None
        value = exponent.xreplace({x: sympy.Float(CHECK_MAX_DIM) for x in free}).evalf()
        if not value.is_Number:
            return None
        limit = MAX_EVALUATED_DIGITS
    try:
        return abs(float(value)), limit
    except (OverflowError, TypeError, ValueError):
        return math.inf, limit


def power_digits(base: Basic, exponent: Basic) -> float | None:
    """The digits of the largest number ``base^exponent`` would compute when that is more than
    the limit (:data:`MAX_NUMBER_DIGITS`), else None.

    SymPy evaluates a power of a number at once and distributes a power over a product
    (``(2c)^N = 2^N c^N``), so each number anywhere in ``base``, raised to ``exponent``, must
    stay within the limit.  An integer symbol (a dimension n) counts as a number of at least
    2: a numeric evaluation computes n^N exactly.  A base without either (``c^(10^300)``) is fine.
    An exponent holding dimensions is bounded as they would be evaluated (:data:`CHECK_MAX_DIM`,
    :data:`MAX_EVALUATED_DIGITS`): ``2^(n*d)`` is fine, ``2^(n^100)`` is not.

    >>> c, n = sympy.Symbol("c"), sympy.Symbol("n", integer=True, positive=True)
    >>> round(power_digits(2 * c, sympy.Integer(10) ** 8)), round(power_digits(n, sympy.Integer(10) ** 8))
    (30103000, 30103000)
    >>> power_digits(c, sympy.Integer(10) ** 300) is None, power_digits(2 * c, sympy.Integer(50)) is None
    (True, True)
    >>> power_digits(sympy.Integer(2), n * n) is None, power_digits(sympy.Integer(2), n ** 100) > 10**100
    (True, True)
    """
    size = _exponent_size(exponent)
    if size is None:
        return None
    value, limit = size
    bits = max((_log2(x) for x in _numbers(base)), default=0.0)
    if bits < 1 and _has_integer_symbol(base):
        bits = 1.0
    if bits == 0:
        return None
    digits = value * bits * math.log10(2)
    return digits if digits > limit else None


def power_refusal(base: Basic, exponent: Basic) -> str | None:
    """Why ``base^exponent`` is refused (what follows "the power … would make"), or None.

    >>> n = sympy.Symbol("n", integer=True, positive=True)
    >>> power_refusal(sympy.Integer(3), sympy.Integer(10000))
    'a number of about 4772 digits: the limit is 1000 (derive.limits.MAX_NUMBER_DIGITS)'
    >>> power_refusal(sympy.Integer(2), n ** 100)
    'a number of about 1.2e+180 digits at dimensions of 64: the limit is 100000 (derive.limits.MAX_EVALUATED_DIGITS)'
    """
    digits = power_digits(base, exponent)
    if digits is None:
        return None
    size = "more than 10^300" if not math.isfinite(digits) else f"about {digits_text(digits)}"
    if isinstance(exponent, sympy.Expr) and exponent.is_Number:
        return f"a number of {size} digits: the limit is {MAX_NUMBER_DIGITS} (derive.limits.MAX_NUMBER_DIGITS)"
    return (f"a number of {size} digits at dimensions of {CHECK_MAX_DIM}: the limit is {MAX_EVALUATED_DIGITS} "
            "(derive.limits.MAX_EVALUATED_DIGITS)")


def digits_text(digits: float) -> str:
    """``digits`` for a message: 30103000, or 3.0e+302 when huge.

    >>> digits_text(4771.2), digits_text(3e302), digits_text(math.inf)
    ('4772', '3.0e+302', 'more than 10^300')
    """
    if not math.isfinite(digits):
        return "more than 10^300"
    return f"{math.ceil(digits)}" if digits < 1e15 else f"{digits:.1e}"


def check_numbers(e: Basic) -> None:
    """Raise :class:`LimitError` where ``e`` holds a number of more than :data:`MAX_NUMBER_DIGITS`
    digits, or a power that would make one.

    >>> check_numbers(sympy.Integer(3) ** 10000)
    Traceback (most recent call last):
    ...
    derive.limits.LimitError: a number of 4772 digits in the expression: the limit is 1000 (derive.limits.MAX_NUMBER_DIGITS)
    """
    stack, seen = [e], set()
    while stack:
        node = stack.pop()
        if id(node) in seen or isinstance(node, _SHAPED_LEAVES):
            continue
        seen.add(id(node))
        stack.extend(node.args)
        if isinstance(node, sympy.Rational):
            if _rational_bits(node) > MAX_NUMBER_BITS:
                digits = digits_text(_log2(node) * math.log10(2))
                raise LimitError(f"a number of {digits} digits in the expression: the limit is "
                                 f"{MAX_NUMBER_DIGITS} (derive.limits.MAX_NUMBER_DIGITS)")
        elif isinstance(node, (sympy.Pow, MatPow, HadamardPower)):
            why = power_refusal(node.args[0], node.args[1])
            if why is not None:
                raise LimitError(f"the power {_short(node)} would make {why}")


def _short(x: Basic) -> str:
    """``x`` in at most 60 characters, without printing a huge number in full."""
    if number_bits(x) > 200:
        return type(x).__name__ + "(…)"
    s = str(x)
    return s if len(s) <= 60 else s[:57] + "..."


# Nodes whose differential copies their argument (σ′(u) ⊙ du, −A⁻¹ dA A⁻¹, …): nesting them
# is what makes a differential grow with the square of the depth.
_NONLINEAR = (sympy.Function, sympy.Pow, MatPow, HadamardPower, sympy.Inverse, sympy.Determinant)


def function_depth(e: Basic, functions: tuple[type, ...] = _NONLINEAR) -> int:
    """The most ``functions`` (by default: elementwise functions, inverses, determinants, powers,
    exp, log …) nested inside one another on a path of ``e``.

    >>> from derive.elementwise import sigmoid, tanh
    >>> X = sympy.MatrixSymbol("X", 3, 2)
    >>> function_depth(sympy.Trace(sigmoid(tanh(X)).T * X)), function_depth(X.T * X)
    (2, 0)
    >>> function_depth(sympy.Trace(sigmoid(tanh(X)).T * X), (sympy.tanh,))
    1
    """
    from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

    depth: dict[int, int] = {}
    stack: list[tuple[Basic, bool]] = [(e, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in depth:
            continue
        if isinstance(node, sympy.Lambda):   # x ↦ σ(σ(x)): the functions of its body
            parts = (node.expr,)
        else:
            parts = node.args
        if not done:
            stack.append((node, True))
            stack.extend((a, False) for a in parts if id(a) not in depth)
            continue
        if isinstance(node, sympy.Lambda):
            depth[id(node)] = depth[id(node.expr)]
        elif isinstance(node, ElementwiseApplyFunction):
            fn, arg = node.args
            depth[id(node)] = depth[id(arg)] + depth[id(fn)]
        else:
            inner = max((depth[id(a)] for a in parts), default=0)
            depth[id(node)] = inner + (1 if isinstance(node, functions) else 0)
    return depth[id(e)]


def size_exceeds(e: Basic, limit: int) -> int | None:
    """The number of nodes of ``e`` when more than ``limit`` (counting stops soon after), else None.

    >>> size_exceeds(sympy.Symbol("a") + sympy.Symbol("b"), 10) is None
    True
    """
    for count, _ in enumerate(sympy.preorder_traversal(e), start=1):
        if count > limit:
            return count
    return None

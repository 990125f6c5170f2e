"""The builder: SymPy objects from the syntax tree, one operator at a time, with the shape
checks, broadcasts and limits of the language."""
from __future__ import annotations

import math
import re

import sympy
from sympy import Determinant, Identity, Inverse, MatMul, MatPow, MatrixExpr, MatrixSymbol, OneMatrix, Trace, \
    Transpose, ZeroMatrix
from sympy.matrices.expressions.hadamard import HadamardPower
from sympy.matrices.expressions.kronecker import KroneckerProduct

from derive.differential import MatrixDifferential, ScalarDifferential
from derive.elementwise import elementwise_functions
from derive.lang.algebra import _hadamard, _ma, _mm
from derive.lang.errors import ExpressionError, Note, make_error
from derive.lang.format import format_expression
from derive.kronecker import Diag, Vec
from derive.lang.functions import MATRIX_FUNCTION_NAMES, is_elementwise, is_layer, matrix_function, scalar_function
from derive.lang.syntax import _Node
from derive.limits import MAX_NUMBER_BITS, MAX_NUMBER_DIGITS, MAX_TANH_DEPTH, digits_text, number_bits, \
    power_refusal
from derive.laws import Gradient
from derive.layers import check_arguments, layer
from derive.matrix_functions import MatrixExponential
from derive.networks import frobenius_sq
from derive.undefined import find_undefined


def _shape_text(v: sympy.Basic) -> str:
    if isinstance(v, MatrixExpr):
        return f"{v.shape[0]}×{v.shape[1]}"
    return "scalar"


_SUBSCRIPTS = str.maketrans("0123456789aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ")


def _ones_text(dim: sympy.Expr) -> str:
    s = str(dim)
    sub = s.translate(_SUBSCRIPTS)
    if all(c in "₀₁₂₃₄₅₆₇₈₉ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ" for c in sub):
        return "1" + sub
    return f"1_{s}"


def _is_scalar(v: sympy.Basic) -> bool:
    return not isinstance(v, MatrixExpr)


def _is_1x1(v: sympy.Basic) -> bool:
    return isinstance(v, MatrixExpr) and v.shape[0] == 1 and v.shape[1] == 1


def _bad_number(v: sympy.Basic) -> bool:
    return isinstance(v, sympy.Expr) and not isinstance(v, MatrixExpr) and v.has(
        sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)


def _complex_number(v: sympy.Basic) -> bool:
    """A scalar that is not real: sqrt(-1), log(-1), (-8)^(1/3)."""
    return isinstance(v, sympy.Expr) and not isinstance(v, MatrixExpr) and (
        v.has(sympy.I) or (not v.free_symbols and v.is_extended_real is False))


class _Builder:
    def __init__(self, text: str, symbols: dict[str, sympy.Basic]):
        self.text = text
        self.symbols = symbols
        self.notes: list[Note] = []

    def src(self, node: _Node) -> str:
        s = " ".join(self.text[node.start:node.end].split())
        return s if len(s) <= 40 else s[:37] + "..."

    def operand(self, node: _Node) -> str:
        """The source of ``node`` as an operand of a suggested ``.^``: bracketed unless it is a name,
        a number or a call (``(X.*X + 1).^0.5``, not ``X.*X + 1.^0.5``)."""
        s = self.src(node)
        call = re.match(r"\w*\(", s)
        whole = re.fullmatch(r"[\w.']+", s) or (call is not None and _closes_at_end(s, call.end() - 1))
        return s if whole else f"({s})"

    def desc(self, node: _Node, v: sympy.Basic) -> str:
        return f"{self.src(node)} ({_shape_text(v)})"

    def fail(self, node: _Node, message: str, kind: str = "invalid") -> ExpressionError:
        return make_error(message, node.column, node.src, self.text, kind)

    def scalar(self, node: _Node, v: sympy.Basic) -> sympy.Expr:
        """``v`` as a scalar: a 1×1 matrix becomes its trace."""
        if _is_1x1(v):
            self.notes.append(Note("scalar-from-1x1", node.column,
                                   f"{self.src(node)} (1×1) used as a scalar: tr({self.src(node)})",
                                   f"{self.src(node)}（1×1）作为标量使用：tr({self.src(node)})"))
            return Trace(v)
        return v

    def build(self, order: list[_Node]) -> sympy.Basic:
        # the whole arguments of tr: where a symbolic or fractional matrix power is derivable
        self.trace_args = {id(c) for node in order if node.kind == "call" and node.token == "tr"
                           for c in node.children}
        vals: dict[int, sympy.Basic] = {}
        tanhs: dict[int, int] = {}
        for node in order:
            # SymPy's tanh is exponential in its nesting: count it before building one
            tanhs[id(node)] = max((tanhs.pop(id(c)) for c in node.children), default=0) + (
                node.kind == "call" and node.token == "tanh")
            if tanhs[id(node)] > MAX_TANH_DEPTH:
                raise self.fail(node, f"tanh nested more than {MAX_TANH_DEPTH} deep: SymPy's tanh takes time "
                                      "exponential in its nesting (derive.limits.MAX_TANH_DEPTH)", "limit")
            args = [vals.pop(id(c)) for c in node.children]
            try:
                v = self.one(node, args)
            except ExpressionError:
                raise
            except RecursionError:
                raise self.fail(node, f"expression nested too deeply at {node.token!r}", "limit") from None
            except Exception as exc:  # SymPy ShapeError, TypeError, ValueError ...
                first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
                raise self.fail(node, f"{node.token!r} cannot be built: {type(exc).__name__}: {first}", "build") \
                    from None
            if (node.kind in ("pow", "call") or node.token in ("/", "./")) and _bad_number(v):
                raise self.fail(node, f"{node.token!r} gives an undefined or infinite value "
                                      f"({self.src(node)} = {v})", "arithmetic")
            if node.kind in ("pow", "call") and _complex_number(v):
                raise self.fail(node, f"{self.src(node)} is not a real number; complex values are not "
                                      "supported", "unsupported")
            if node.kind in ("num", "bin", "unary", "pow", "call"):
                self.check_size(node, v)
            self.check_defined(node, v, args)
            vals[id(node)] = v
        return vals[id(order[-1])]

    def check_size(self, node: _Node, v: sympy.Basic) -> None:
        """Refuse a number (the coefficient of ``v``) of more than MAX_NUMBER_DIGITS digits."""
        if isinstance(v, MatMul):
            coeff = v.as_coeff_mmul()[0]
        elif isinstance(v, (sympy.Mul, sympy.Add)):
            coeff = v.as_coeff_Add()[0] if isinstance(v, sympy.Add) else v.as_coeff_Mul()[0]
        else:
            coeff = v
        if isinstance(coeff, sympy.Rational) and number_bits(coeff) > MAX_NUMBER_BITS:
            raise self.fail(node, f"{self.src(node)} makes a number of "
                                  f"{digits_text(number_bits(coeff) * math.log10(2))} digits: the limit is "
                                  f"{MAX_NUMBER_DIGITS} (derive.limits.MAX_NUMBER_DIGITS)", "limit")

    def check_defined(self, node: _Node, v: sympy.Basic, args: list[sympy.Basic]) -> None:
        """Refuse ``v`` if what this node built holds an undefined constant (inv(0), 1/det(0), log(0))."""
        found = find_undefined(v, known=args)
        if found is not None:
            _, operand, phrase = found
            name = next((self.src(c) for c, a in zip(node.children, args) if a == operand), None)
            raise self.fail(node, f"{self.src(node)} is undefined: it "
                                  f"{phrase.format(name or format_expression(operand))}", "undefined")

    def one(self, node: _Node, args: list[sympy.Basic]) -> sympy.Basic:
        k = node.kind
        if k == "num":
            return node.value
        if k == "ones":
            return Identity(node.value[0]) if node.token == "eye" else OneMatrix(*node.value)
        if k == "name":
            return self.symbols[node.token]
        if k == "dims":
            dims = node.value
            return {"ones": OneMatrix, "zeros": ZeroMatrix, "eye": Identity}[node.token](*dims)
        if k == "unary":
            (a,) = args
            if node.token == "+":
                return a
            return _mm(-1, a) if isinstance(a, MatrixExpr) else -a
        if k == "post":
            (a,) = args
            return Transpose(a) if isinstance(a, MatrixExpr) else a
        if k == "bin":
            return self.binary(node, *node.children, *args)
        if k == "pow":
            return self.power(node, *node.children, *args)
        if k == "grad":
            (wrt,) = args
            if not isinstance(wrt, MatrixSymbol):
                raise self.fail(node, f"∂{node.value}/∂{self.src(node.children[0])}: the variable must be a matrix",
                                "unsupported")
            return Gradient(sympy.Symbol(node.value), wrt)
        if k == "diff":
            (a,) = args
            return MatrixDifferential(a) if isinstance(a, MatrixExpr) else ScalarDifferential(a)
        if k == "call":
            return self.any_call(node, args)
        raise AssertionError(k)

    # ----- operators
    def binary(self, node: _Node, ln: _Node, rn: _Node, a: sympy.Basic, b: sympy.Basic) -> sympy.Basic:
        op = node.token
        if op in ("+", "-"):
            return self.add(node, ln, rn, a, b, op == "-")
        if op == "*":
            return self.multiply(node, ln, rn, a, b)
        if op == "/":
            return self.divide(node, ln, rn, a, b)
        # .* and ./
        if _is_scalar(a) or _is_scalar(b):
            if op == ".*":
                return self.multiply(node, ln, rn, a, b)
            if _is_scalar(b):
                return self.divide(node, ln, rn, a, b)
            return _mm(a, HadamardPower(b, -1))
        if a.shape != b.shape:
            what = "Hadamard product" if op == ".*" else "Hadamard division"
            raise self.fail(node, f"{op!r} joins {self.desc(ln, a)} with {self.desc(rn, b)}: "
                                  f"{what} needs equal shapes", "shape")
        if op == "./":
            b = HadamardPower(b, -1)
        return _hadamard(a, b)

    def add(self, node: _Node, ln: _Node, rn: _Node, a: sympy.Basic, b: sympy.Basic,
            minus: bool) -> sympy.Basic:
        if _is_scalar(a) and _is_scalar(b):
            return a - b if minus else a + b
        if isinstance(a, MatrixExpr) and isinstance(b, MatrixExpr) and a.shape == b.shape:
            pass
        elif isinstance(b, MatrixExpr) and (_is_scalar(a) or _is_1x1(a)):
            a = self.broadcast_scalar(ln, self.scalar(ln, a), b.shape)
        elif isinstance(a, MatrixExpr) and (_is_scalar(b) or _is_1x1(b)):
            b = self.broadcast_scalar(rn, self.scalar(rn, b), a.shape)
        else:
            a2 = self.broadcast(ln, a, b.shape)
            b2 = self.broadcast(rn, b, a.shape)
            if a2 is None and b2 is None:
                raise self.fail(node, f"{node.token!r} joins {self.desc(ln, a)} with {self.desc(rn, b)}: "
                                      "a sum needs equal shapes (or a 1×m row, n×1 column or "
                                      "scalar to broadcast)", "shape")
            a, b = a2 if a2 is not None else a, b2 if b2 is not None else b
        if minus:
            b = _mm(-1, b)
        return _ma(a, b)

    def broadcast_scalar(self, node: _Node, c: sympy.Expr, shape: tuple) -> MatrixExpr:
        r, k = shape
        self.notes.append(Note("broadcast-scalar", node.column,
                               f"{self.src(node)} (scalar) broadcast to {r}×{k} as "
                               f"{self.src(node)}·{_ones_text(r)}{_ones_text(k)}ᵀ",
                               f"{self.src(node)}（标量）广播为 {r}×{k} 矩阵 "
                               f"{self.src(node)}·{_ones_text(r)}{_ones_text(k)}ᵀ"))
        return _mm(c, OneMatrix(r, k))

    def broadcast(self, node: _Node, v: MatrixExpr, shape: tuple) -> MatrixExpr | None:
        """``v`` (a row or column) broadcast to ``shape``, or None where it does not fit."""
        (r, c), (R, C) = v.shape, shape
        if r == 1 and c == C and R != 1:
            self.notes.append(Note("broadcast-row", node.column,
                                   f"{self.src(node)} (1×{c}) broadcast over the {R} rows as "
                                   f"{_ones_text(R)}·{self.src(node)}",
                                   f"{self.src(node)}（1×{c}）沿 {R} 行广播为 {_ones_text(R)}·{self.src(node)}"))
            return _mm(OneMatrix(R, 1), v)
        if c == 1 and r == R and C != 1:
            self.notes.append(Note("broadcast-column", node.column,
                                   f"{self.src(node)} ({r}×1) broadcast over the {C} columns as "
                                   f"{self.src(node)}·{_ones_text(C)}ᵀ",
                                   f"{self.src(node)}（{r}×1）沿 {C} 列广播为 {self.src(node)}·{_ones_text(C)}ᵀ"))
            return _mm(v, OneMatrix(1, C))
        return None

    def multiply(self, node: _Node, ln: _Node, rn: _Node, a: sympy.Basic, b: sympy.Basic) -> sympy.Basic:
        if _is_scalar(a) and _is_scalar(b):
            return a * b
        if _is_scalar(a) or _is_scalar(b):
            return _mm(a, b)
        if a.shape[1] == b.shape[0]:
            return _mm(a, b)
        if _is_1x1(a):
            return _mm(self.scalar(ln, a), b)
        if _is_1x1(b):
            return _mm(self.scalar(rn, b), a)
        what = "the product" if node.implicit else "'*'"
        raise self.fail(node, f"{what} joins {self.desc(ln, a)} with {self.desc(rn, b)}: a matrix product "
                              f"needs the columns of the left ({a.shape[1]}) to equal the rows of "
                              f"the right ({b.shape[0]})", "shape")

    def divide(self, node: _Node, ln: _Node, rn: _Node, a: sympy.Basic, b: sympy.Basic) -> sympy.Basic:
        if isinstance(b, MatrixExpr) and not _is_1x1(b):
            raise self.fail(node, f"{node.token!r} divides {self.src(ln)} by {self.desc(rn, b)}: only "
                                  "division by a scalar is allowed (use './' for elementwise "
                                  "division, or inv())", "shape")
        b = self.scalar(rn, b)
        if b == 0:
            raise self.fail(node, f"{node.token!r} divides {self.src(ln)} by zero", "arithmetic")
        if isinstance(a, MatrixExpr):
            return _mm(sympy.Pow(b, -1), a)
        return a / b

    def bounded(self, node: _Node, base: sympy.Basic, e: sympy.Basic) -> None:
        """Refuse a power that would compute a huge number: SymPy evaluates 3^10000 at once and
        distributes (2c)^N into 2^N c^N."""
        why = power_refusal(base, e)
        if why is not None:
            raise self.fail(node, f"{self.src(node)} would make {why}", "limit")

    def scalar_power(self, node: _Node, base: sympy.Expr, e: sympy.Expr) -> sympy.Expr:
        if base.is_Number and e.is_Number and base == 0 and e.is_negative:
            raise self.fail(node, f"{node.token!r} raises zero to a negative power", "arithmetic")
        self.bounded(node, base, e)
        return sympy.Pow(base, e)

    def power(self, node: _Node, bn: _Node, en: _Node, base: sympy.Basic, e: sympy.Basic) -> sympy.Basic:
        op = node.token
        if isinstance(e, MatrixExpr) and not _is_1x1(e):
            raise self.fail(node, f"{op!r} has the exponent {self.desc(en, e)}: an exponent must "
                                  "be a scalar", "shape")
        e = self.scalar(en, e)
        if _is_scalar(base):
            return self.scalar_power(node, base, e)
        if op == ".^":
            self.bounded(node, base, e)
            return HadamardPower(base, e)
        if _is_1x1(base) and not isinstance(e, sympy.Integer):
            return self.scalar_power(node, self.scalar(bn, base), e)
        raised = f"'^' raises {self.desc(bn, base)} to {self.src(en)}"
        if base.shape[0] != base.shape[1]:
            raise self.fail(node, f"{raised}: a matrix power needs a square matrix (for the power of "
                                  f"each entry write {self.operand(bn)}.^{self.operand(en)})", "shape")
        if id(node) in getattr(self, "trace_args", ()) and not isinstance(e, sympy.Integer) and (
                isinstance(e, sympy.Rational) or (not e.is_Number and e.free_symbols and e.is_real is not False)):
            # Xᵏ with a symbol k, (XᵀX)^(1/2): derived inside a trace, d tr(Aᵖ) = p tr(Aᵖ⁻¹ dA)
            self.bounded(node, base, e)
            return MatPow(base, e)
        if not isinstance(e, sympy.Integer):
            if e.is_Number:
                why = ("matrix square roots and other non-integer matrix powers are supported only as the "
                       "whole argument of tr, such as tr((X'*X)^(1/2))"
                       if e.is_real else "a matrix power needs an integer exponent")
            else:
                why = ("symbolic matrix powers are supported only as the whole argument of tr, such as "
                       "tr(A^k); elsewhere the exponent must be an integer number such as 2 or -1")
            raise self.fail(node, f"{raised}: {why} (.^ is a different function: the power of each entry)", "unsupported")
        self.bounded(node, base, e)
        self.check_defined(node, MatPow(base, e), [base])
        return MatPow(base, e).doit(deep=False)

    def elementwise(self, node: _Node, an: _Node, a: sympy.Basic) -> sympy.Basic:
        fname = node.token
        if node.value == "derivative":   # φ′ of each entry, from the elementwise registry
            record = elementwise_functions()[fname]
            if _is_scalar(a) or _is_1x1(a):
                return record.scalar_derivative(self.scalar(an, a))
            return record.derivative(a)
        if _is_scalar(a) or _is_1x1(a):
            return scalar_function(fname)(self.scalar(an, a))
        if fname in MATRIX_FUNCTION_NAMES and a.shape[0] == a.shape[1]:
            en, zh = MATRIX_FUNCTION_NAMES[fname]
            call = f"{fname}({self.src(an)})"
            self.notes.append(Note("elementwise-function", node.column,
                                   f"{call} is the elementwise {en} (of each entry), not the matrix {en}",
                                   f"{call} 是逐元素{zh}（对每个元素），不是矩阵{zh}"))
        return matrix_function(fname)(a)

    def call(self, node: _Node, an: _Node, a: sympy.Basic) -> sympy.Basic:
        fname = node.token
        if is_elementwise(fname):
            return self.elementwise(node, an, a)
        if fname in ("tr", "det", "logdet", "inv", "expm"):
            return self.square(node, an, a)
        if fname == "sqrt":
            if isinstance(a, MatrixExpr) and not _is_1x1(a):
                raise self.fail(node, f"'sqrt' takes a scalar, got {self.desc(an, a)}: the matrix square "
                                      f"root is not supported (for the square root of each entry, a "
                                      f"different function, write {self.operand(an)}.^0.5)", "unsupported")
            return sympy.sqrt(self.scalar(an, a))
        if fname == "norm2":
            if _is_scalar(a):
                raise self.fail(node, f"'norm2' takes a matrix, got {self.desc(an, a)}", "shape")
            return sympy.sqrt(frobenius_sq(a))
        if fname == "sum":
            if _is_scalar(a):
                return a
            if _is_1x1(a):
                return Trace(a)
            r, c = a.shape
            factors = ([OneMatrix(1, r)] if r != 1 else []) + [a] + ([OneMatrix(c, 1)] if c != 1 else [])
            return Trace(_mm(*factors))
        raise AssertionError(fname)

    def any_call(self, node: _Node, args: list[sympy.Basic]) -> sympy.Basic:
        """A function call: a layer, kron/vec/diag, or a function of one argument."""
        if is_layer(node.token):
            return self.layer_call(node, args)
        if node.token in ("kron", "vec", "diag"):
            return self.kronecker_call(node, args)
        return self.call(node, node.children[0], args[0])

    def kronecker_call(self, node: _Node, args: list[sympy.Basic]) -> sympy.Basic:
        """kron(A, B) = A ⊗ B, vec(A) (the columns stacked), diag(v) (a column v on the diagonal)."""
        fname = node.token
        for an, a in zip(node.children, args):
            if _is_scalar(a):
                raise self.fail(node, f"{fname!r} takes matrices, got {self.desc(an, a)}", "shape")
        if fname == "kron":
            return KroneckerProduct(*args)
        (a,) = args
        if fname == "vec":
            return Vec(a)
        if a.shape[1] != 1:
            raise self.fail(node, f"'diag' takes a column vector (n×1), got {self.desc(node.children[0], a)}: "
                                  f"for a matrix write diag(vec(...))", "shape")
        return Diag(a)

    def layer_call(self, node: _Node, args: list[sympy.Basic]) -> sympy.Basic:
        """A layer (derive.layers) inside an expression: its value with the sub-stages inlined
        (softmax(Z) is exp(Z) ⊙ [(exp(Z)𝟏ₖ)^∘−1 𝟏ₖᵀ], row-wise, as the tool prints it)."""
        record = layer(node.token)
        values = []
        for name, want, an, a in zip(record.arguments, record.signature, node.children, args):
            if want == ():
                if isinstance(a, MatrixExpr) and not _is_1x1(a):
                    raise self.fail(node, f"{record.call}: {name} must be a scalar, got {self.desc(an, a)}", "shape")
                a = self.scalar(an, a)
            elif _is_scalar(a):
                raise self.fail(node, f"{node.token!r} takes a matrix as {name} ({want[0]}×{want[1]}), got "
                                      f"{self.desc(an, a)}", "shape")
            values.append(a)
        try:
            check_arguments(record, tuple(values))
            # the sub-stages are substituted away: a name no text can hold keeps them apart from its names
            return record.expand(f"⟨{node.token}⟩", *values).inline()
        except ValueError as err:
            written = ", ".join(self.desc(c, a) for c, a in zip(node.children, args))
            raise self.fail(node, f"{err} (in {node.token}({written}))", "shape") from None

    def square(self, node: _Node, an: _Node, a: sympy.Basic) -> sympy.Basic:
        """tr, det, logdet and inv: of a scalar, or of a square matrix."""
        fname = node.token
        if _is_scalar(a):
            return {"tr": a, "det": a, "logdet": sympy.log(a), "inv": sympy.Pow(a, -1), "expm": sympy.exp(a)}[fname]
        if a.shape[0] != a.shape[1]:
            raise self.fail(node, f"{fname!r} needs a square matrix, got {self.desc(an, a)}", "shape")
        if fname == "tr":
            return Trace(a)
        if fname == "det":
            return Determinant(a)
        if fname == "logdet":
            return sympy.log(Determinant(a))
        if fname == "expm":
            return MatrixExponential(a)
        return Inverse(a)


def _closes_at_end(s: str, start: int) -> bool:
    """The bracket that opens at ``start`` closes at the end of ``s``: ``exp(X)`` is one operand,
    ``exp(X) + exp(Y)`` and ``(a) + (b)`` are not."""
    depth = 0
    for i in range(start, len(s)):
        depth += (s[i] == "(") - (s[i] == ")")
        if depth == 0:
            return i == len(s) - 1
    return False

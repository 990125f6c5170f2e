"""A small, safe expression language for matrix functions, parsed into SymPy.

``parse_expression("norm2(Y - (sigmoid(X*W1 + b1)*W2 + b2))^2", shapes)`` builds
the SymPy expression that ``derive`` differentiates.  The text is never handed to
``eval``, ``exec``, ``sympify`` or ``parse_expr``: a tokenizer reads it, lark's LALR parser of
the grammar file ``derive/lang/grammar.lark`` builds a small syntax tree, shapes are inferred over
it, and only then are SymPy objects constructed, one operator at a time.

The package, one job a module: ``grammar.lark`` (the grammar), :mod:`~derive.lang.tokens` (the
tokenizer), :mod:`~derive.lang.syntax` (the syntax tree; the lark parser, its custom lexer and error
messages), :mod:`~derive.lang.shapes` (shape inference, union-find),
:mod:`~derive.lang.build` (SymPy objects), :mod:`~derive.lang.format` (back to text),
:mod:`~derive.lang.compare` (structural comparison), :mod:`~derive.lang.errors` (``ExpressionError``
with its machine-readable ``kind``, one of :data:`KINDS`; ``Note``), :mod:`~derive.lang.functions`
(the function names; the elementwise ones read through one function) and :mod:`~derive.lang.core`
(:func:`parse`, :func:`parse_expression`, :func:`syntax_check`).

Why lark: the grammar file is the language's documentation (read it for the rules and their
precedence), and the languages to come (multi-statement programs, a LaTeX dialect) are grammar
files too.  Why a custom lexer in front of it: the lexing is context-dependent in small ways that a
regular-expression lexer cannot do (``2.*A`` is ``2 .* A``, ``.5`` is a number, ``A.T`` a
transpose, ``A.Tx`` an error; ``X^T`` is a transpose unless ``T`` is declared; names written
together, ``XW1``, split by the declared names).  :mod:`~derive.lang.tokens` reads the text and
:mod:`~derive.lang.syntax` gives lark its tokens; lark's ``UnexpectedToken`` becomes the same
one-line :class:`ExpressionError` as before, naming the token and its 1-based column, from the
tokens around it and the open brackets.  The parser applies the rules' callbacks as it reduces,
so no depth of nesting reaches Python's recursion limit; the lexer refuses nesting beyond
:data:`derive.limits.MAX_NESTING` as it counts brackets and signs.

Grammar, in short (``grammar.lark`` has it in full; precedence from low to high, ``^`` and ``.^``
right-associative)::

    expression := product  (("+" | "-") product)*
    product    := unary    (("*" | "/" | ".*" | "./") unary)*
    unary      := ("-" | "+") unary | side
    side       := power    power*                      (factors side by side: 2X, Xᵀ(Y - P))
    power      := postfix  (("^" | ".^") exponent | "^T")?
    exponent   := ("-" | "+") exponent | power
    postfix    := primary  ("'" | ".T" | SUPERSCRIPT)*
    primary    := NUMBER | NAME | NAME "(" [expression ("," expression)*] ")" | ONES
                | "(" expression ")" | "[" expression "]"
    NAME       := [A-Za-z_][A-Za-z0-9_]* | a Greek letter (λ is lambda) …
    NUMBER     := ([0-9]+ ("." [0-9]+)? | "." [0-9]+) ([eE] [+-]? [0-9]+)?
    ONES       := "𝟏" (subscript dimension: 𝟏ₙ, 𝟏_n, 𝟏_(m1))?
    SUPERSCRIPT:= "²", "⁻¹", "⁻ᵀ", "∘²" …               (X², X⁻¹, X⁻ᵀ = (X⁻¹)ᵀ, the Hadamard X∘²)

So ``-a^2`` is ``-(a^2)``, ``a^-1`` is allowed, ``a^b^c`` is ``a^(b^c)``, ``2*-x`` is
``2*(-x)``, ``-X*W`` is ``(-X)*W`` and ``X'*W`` is ``(X')*W``.  Numbers are exact
(``0.5`` is ``Rational(1, 2)``).  Whitespace (spaces, tabs, newlines) separates tokens
and counts towards columns.

The text the tool prints reads back, and so does what people type: ``−`` is ``-``; ``@``, ``×``
and ``·`` are ``*``; ``⊙`` and ``∘`` are ``.*``, ``⊘`` is ``./``; ``ᵀ`` and ``⊤`` are ``'``;
``X^T`` is the transpose where ``T`` is neither a declared name nor a dimension; ``σ`` is
``sigmoid``; ``𝟏ₙ`` is ``ones(n, 1)``, a bare ``𝟏`` the ones matrix of the shape around it and
an undeclared ``I`` the identity.
Factors side by side are a product that binds tighter than the written operators (``A .* 2B``
is ``A .* (2*B)``, ``2X^2`` is ``2*(X^2)``); a number after a factor needs ``*`` (``X 2`` is an
error), and ``a/2b`` is refused as ambiguous.  A declared variable followed by ``(`` is a
product, ``X(A + B)``.  An undeclared name that is a declared one spelt with or without
underscores (``Y_pred`` for ``Ypred``), an elementwise function of one (``h_sigmoid`` for
``sigmoid(h)``), or that splits in exactly one way into declared names (``XW1`` for ``X W1``),
reads as those, with a :class:`Note`.

Operators:

* ``+ -``: sums of equal shapes, with broadcasting: a 1×m row with an n×m matrix becomes
  ``OneMatrix(n, 1)*b``, an n×1 column with an n×m matrix ``b*OneMatrix(1, m)``, a scalar
  (or 1×1 matrix) ``c*OneMatrix(n, m)``; each broadcast is recorded as a :class:`Note`.
* ``*``: matrix product; a scalar times a matrix is a scalar multiple, and so is a 1×1
  matrix times a matrix it does not conform with (through ``Trace`` of the 1×1 factor).
* ``/``: division by a scalar (or 1×1) only.  ``.*`` and ``./``: Hadamard product and
  division of equal shapes (a scalar operand makes them ``*`` and ``/``).
* ``^``: scalar power, or an integer power of a square matrix (``A^-1`` is ``Inverse``);
  matrix square roots and symbolic matrix powers are refused, saying that ``.^`` is a
  different function.  ``.^``: Hadamard power by a scalar.  Postfix ``'`` and ``.T``: transpose.

Limits (:mod:`derive.limits`): the length and nesting of the text, the digits of literals, the
digits of any number a product or power would compute (``(2*c)^(10^8)`` distributes the power
onto the 2 and is refused before SymPy computes it) and the nesting of ``tanh``; a refusal is an
:class:`ExpressionLimitError`.  ``exp``, ``log`` and ``tanh`` of a square matrix are elementwise,
and a :class:`Note` says so (a reader of the Matrix Cookbook means the matrix function).

Functions: ``tr`` (Trace), ``det`` (Determinant), ``logdet`` (log of Determinant),
``inv`` (Inverse), ``norm2`` (``sqrt(frobenius_sq(A))``, so ``norm2(A)^2`` is
``tr(AᵀA)``), ``sum`` (``tr(1ᵀ A 1)``, a scalar), ``sqrt`` (scalars), the elementwise
``sigmoid tanh relu softplus exp log step gelu swish leaky_relu elu`` (matrices elementwise, scalars
directly), the layers of :mod:`derive.layers` (``softmax(Z)``, ``logsoftmax(Z)``, ``cross_entropy(Z, Y)``,
``mean_rows``/``mean_cols``, ``var_rows``/``var_cols``, ``batchnorm(Z, gamma, beta[, eps])``,
``layernorm(Z, gamma, beta[, eps])``, ``attention(Q, K, V[, M])``, ``hinge(Z, Y)``,
``svm_loss(Z, Y[, delta])``, ``dropout(Z, M[, p])``: their arguments' shapes checked against the
layer's signature, the value inlined) and
``ones(r, c)``, ``zeros(r, c)``, ``eye(n)``, whose arguments are dimensions (positive
integers or dimension names).  ``step``, ``ones``, ``zeros`` and ``eye`` go beyond the
minimum so that :func:`format_expression` can write the gradients ``derive`` produces.
Where a 1×1 matrix is used as a scalar (the argument of ``exp``, ``log``, ``sqrt`` …, a
divisor, an exponent, a non-integer power base) it becomes ``Trace`` of itself.

Shapes: ``shapes`` maps names to ``(rows, cols)`` (positive ints, dimension names, or
SymPy dimensions) or ``()`` for a scalar.  A dimension name ``"n"`` becomes
``Symbol("n", integer=True, positive=True)``, and may be used as a scalar in the text
(``norm2(E)^2/n``) unless a variable has the same name.  Names missing from ``shapes`` are matrices
whose shapes are inferred by unification over dimension variables (``A + B`` with A known
gives B A's shape; ``X*W`` fixes W's rows); a name whose shape stays open is an error.

Structure: each operator builds what SymPy's own operator would (``MatMul(a, b).doit(deep=False)``
and the like: canonical, flattened, scalars in front), elementwise functions come from
:mod:`derive.elementwise`, and parsing a text twice gives ``==`` results.  SymPy's sum
canonicaliser evaluates terms that carry a numeric coefficient, so ``A - (A*B)'`` becomes
``A - B'A'`` exactly as ``A - (A*B).T`` does in Python; where it composes elementwise
functions (``-σ(σ(X))``) the parser splits them back into nested applications.
"""
from __future__ import annotations

from derive.lang.compare import same_structure
from derive.lang.core import (
    SYNTAXES, Dim, ParsedExpression, Reading, Shape, is_latex, parse, parse_expression, readings, syntax_check,
)
from derive.lang.errors import KINDS, ExpressionError, ExpressionLimitError, Note
from derive.lang.format import format_expression
from derive.lang.functions import function_names



def __getattr__(name: str) -> object:
    if name == "FUNCTIONS":   # every function name, read now: a function defined later is one
        return function_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FUNCTIONS",
    "KINDS",
    "SYNTAXES",
    "Dim",
    "ExpressionError",
    "ExpressionLimitError",
    "Note",
    "ParsedExpression",
    "Reading",
    "Shape",
    "format_expression",
    "is_latex",
    "parse",
    "parse_expression",
    "readings",
    "same_structure",
    "syntax_check",
]

"""Matrix sums and products built as SymPy's own operators build them (canonical, flattened)."""
from __future__ import annotations

import sympy
from sympy import MatAdd, MatMul, MatrixExpr
from sympy.matrices.expressions.hadamard import HadamardProduct
from sympy.matrices.expressions.hadamard import canonicalize as _hadamard_canonical


def _mm(*args: sympy.Basic) -> MatrixExpr:
    """A matrix product as ``*`` builds it (canonical, args not evaluated further)."""
    out = MatMul(*args).doit(deep=False)
    if isinstance(out, MatAdd):   # 2*(A + B) is distributed, into an unsorted sum
        out = _ma(*out.args)
    return out


def _hadamard(a: MatrixExpr, b: MatrixExpr) -> MatrixExpr:
    """A Hadamard product, canonical: SymPy's canonicaliser needs a second pass at times
    (A.*(A.*(A.*A)) first becomes A.^2 .* A.^2)."""
    out = _hadamard_canonical(HadamardProduct(a, b))
    for _ in range(8):
        if not isinstance(out, HadamardProduct):
            break
        again = _hadamard_canonical(out)
        if again == out:
            break
        out = again
    return out


def _ma(*args: sympy.Basic) -> MatrixExpr:
    """A matrix sum as ``+`` builds it (canonical, args not evaluated further)."""
    return MatAdd(*args).doit(deep=False)

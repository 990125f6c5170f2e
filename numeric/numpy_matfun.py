"""Matrix functions of the NumPy backend: the matrix exponential, powers of a symmetric positive
definite matrix, and a matrix power by an exponent known at run time.  NumPy only.

Its source is copied into a generated module that calls one of them (so an exported kernel needs
NumPy alone, as SciPy is not a dependency).  The exponential is Higham's scaling and squaring with
the [13/13] Padé approximant ("The scaling and squaring method for the matrix exponential
revisited", SIAM J. Matrix Anal. Appl. 26, 2005), in the dtype of its argument.
"""
import numpy

_PADE13 = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
           129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
           40840800.0, 960960.0, 16380.0, 182.0, 1.0)
_THETA13 = 5.371920351148152   # the largest 1-norm for which [13/13] Padé is exact to double precision


def _expm(A):
    """e^A of a square array (not elementwise).

    >>> import numpy
    >>> float(_expm(numpy.array([[0.0, 1.0], [-1.0, 0.0]]))[0, 1]) == float(numpy.sin(1.0))
    True
    """
    b = _PADE13
    norm = float(numpy.abs(A).sum(axis=0).max()) if A.size else 0.0
    s = 0  # the fewest halvings that bring the norm to θ₁₃: ⌈log₂(norm/θ₁₃)⌉, exact in Python floats
    while norm > _THETA13 * 2.0 ** s:
        s += 1
    A = A * A.dtype.type(2.0 ** -s)
    ident = numpy.eye(A.shape[0], dtype=A.dtype)
    A2 = A @ A
    A4 = A2 @ A2
    A6 = A4 @ A2
    U = A @ (A6 @ (b[13] * A6 + b[11] * A4 + b[9] * A2) + b[7] * A6 + b[5] * A4 + b[3] * A2 + b[1] * ident)
    V = A6 @ (b[12] * A6 + b[10] * A4 + b[8] * A2) + b[6] * A6 + b[4] * A4 + b[2] * A2 + b[0] * ident
    X = numpy.linalg.solve(V - U, V + U)
    for _ in range(s):
        X = X @ X
    return X


def _spd_power(A, p):
    """Aᵖ of a symmetric positive definite array by its eigenvalues (A is symmetrized first).

    >>> import numpy
    >>> bool(numpy.allclose(_spd_power(numpy.array([[4.0, 0.0], [0.0, 9.0]]), 0.5), [[2, 0], [0, 3]]))
    True
    """
    w, Q = numpy.linalg.eigh((A + A.T) / 2)
    if w.size and not w.min() > 0:
        raise ValueError(f"the matrix power by {float(p)} needs a symmetric positive definite matrix; "
                         f"the smallest eigenvalue is {float(w.min())}")
    return (Q * w ** A.dtype.type(p)) @ Q.T


def _matrix_power(A, k):
    """Aᵏ for an integer k known at run time (a dimension or a scalar argument)."""
    if float(k) != int(k):
        raise ValueError(f"the matrix power needs an integer exponent, got {float(k)}")
    return numpy.linalg.matrix_power(A, int(k))

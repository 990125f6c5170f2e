"""The NumPy backend's argument checks (:mod:`numeric.numpy_backend`), and the run-time helpers
(``_add_diag``, ``_gram``, ``_colsum``, ``_rowsum``): NumPy only.

Its source is copied verbatim into every generated module (compiled or
exported), so an exported kernel checks its arguments exactly as a compiled one.
"""
import numpy

# the dtypes of the fast path of a kernel's argument checks (numpy_backend._fast_check)
_F64, _F32 = numpy.dtype(numpy.float64), numpy.dtype(numpy.float32)


def _add_diag(M, v, fresh):
    """M + diag(v) without forming diag(v): v added to M's diagonal (in place where M is an array the
    kernel has just computed and reads nowhere else)."""
    out = M if fresh else M.copy()
    out.flat[::out.shape[1] + 1] += v.ravel()
    return out


def _gram(P, v):
    """Pᵀdiag(v)P without forming diag(v): (√v ⊙ P)ᵀ(√v ⊙ P) where v ≥ 0 (a product of a matrix with its
    own transpose, which BLAS computes as one triangle: half the work), else Pᵀ(v ⊙ P)."""
    if (v >= 0).all():
        B = numpy.sqrt(v) * P
        return numpy.dot(B.T, B)
    return numpy.dot(P.T, v * P)


# Rows of ones by (length, dtype), for the sums of _colsum and _rowsum: at most _ONES_KEPT of them,
# each of at most _ONES_LONGEST elements (a longer one is made for the call)
_ONES = {}
_ONES_KEPT, _ONES_LONGEST = 16, 1 << 16


def _ones_row(n, dtype):
    """A read-only 1×n array of ones of ``dtype``."""
    key = (n, dtype)
    row = _ONES.get(key)
    if row is None:
        row = numpy.ones((1, n), dtype)
        if n <= _ONES_LONGEST:
            if len(_ONES) >= _ONES_KEPT:
                _ONES.clear()
            row.flags.writeable = False
            _ONES[key] = row
    return row


def _colsum(G):
    """𝟏ᵀG, the 1×m sums of G's columns, as one BLAS product with a row of ones: two to four times
    as fast as ``G.sum(axis=0, keepdims=True)`` (NumPy reduces across rows one row at a time),
    and as accurate.

    >>> import numpy
    >>> _colsum(numpy.arange(6.0).reshape(3, 2)).tolist()
    [[6.0, 9.0]]
    """
    return numpy.dot(_ones_row(G.shape[0], G.dtype), G)


def _rowsum(G):
    """G𝟏, the n×1 sums of G's rows, as one BLAS product with a column of ones.

    >>> import numpy
    >>> _rowsum(numpy.arange(6.0).reshape(3, 2)).tolist()
    [[1.0], [5.0], [9.0]]
    """
    return numpy.dot(G, _ones_row(G.shape[1], G.dtype).T)


def _shape_text(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _prepare(arrays, spec, signature, dtype):
    """Check ``arrays`` against ``spec`` and return them as arrays of one float dtype.

    ``spec`` is ``((name, (dim0, dim1)), ...)``; a dimension is an int or a name
    shared between arguments; ``(name, None)`` is a scalar argument.  Every argument
    becomes a plain ``numpy.ndarray``: a subclass such as ``numpy.matrix`` (whose
    ``*`` is a matrix product) is converted, a masked array is refused (its mask
    would be ignored).  float32 and float64 keep their dtype when all agree;
    float16 is computed in float32 (exact; NumPy's linalg takes no float16);
    integers, booleans and mixed dtypes become float64; longdouble is refused
    (linalg takes nothing wider than float64, and rounding it silently would lose
    precision); ``dtype`` (if not None) overrides all this.  A scalar (a real number,
    or an array of size 1) becomes a NumPy scalar of that dtype and takes no part
    in choosing it, unless every argument is a scalar.
    """
    if len(arrays) != len(spec):
        noun = "array" if all(shape is not None for _, shape in spec) else "argument"
        raise TypeError(f"{signature} takes {len(spec)} {noun}{'s' if len(spec) != 1 else ''}, "
                        f"got {len(arrays)}")
    dims = {}
    out = []
    floats = set()
    scalar_floats = set()
    for a, (name, shape) in zip(arrays, spec):
        a = _as_ndarray(a, name)
        _vote(a, name, shape is None, floats if shape is not None else scalar_floats, dtype)
        if shape is None:
            if a.size != 1:
                raise ValueError(f"argument {name}: expected a scalar (a real number or an array of size 1), "
                                 f"got an array of shape {a.shape}")
            out.append(a.reshape(()))
            continue
        _check_shape(a, name, shape, dims)
        out.append(a)
    if dtype is None:
        if not floats:
            floats = scalar_floats
        dtype = floats.pop() if len(floats) == 1 else numpy.dtype(numpy.float64)
    return [a.astype(dtype)[()] if shape is None else a if a.dtype == dtype else a.astype(dtype)
            for a, (_, shape) in zip(out, spec)], dtype


def _as_ndarray(a, name):
    """``a`` as a plain ndarray: a subclass converted, a masked array or a ragged list refused."""
    if a.__class__ is numpy.ndarray:
        return a
    if isinstance(a, numpy.ndarray) and isinstance(a, numpy.ma.MaskedArray):
        raise TypeError(f"argument {name}: masked arrays are not supported (the mask would be "
                        f"ignored); pass {name}.filled(value) or {name}.data")
    try:
        return numpy.asarray(a)  # a plain ndarray, also from numpy.matrix
    except ValueError as exc:  # a ragged nested list
        first = (str(exc).splitlines() or [""])[0]
        raise ValueError(f"argument {name}: cannot be converted to an array: {first}") from None


def _vote(a, name, scalar, votes, dtype):
    """Add the float dtype that ``a`` asks the computation for to ``votes``; refuse other dtypes."""
    kind = a.dtype.kind
    if kind == "f":
        char = a.dtype.char
        if char in "fd":
            votes.add(numpy.dtype(char))
        elif char == "e":
            votes.add(numpy.dtype(numpy.float32))
        elif dtype is None:
            raise TypeError(f"argument {name}: dtype {a.dtype} is not supported (kernels compute "
                            f"in float32 or float64, as NumPy's linalg does); convert it with "
                            f"{name}.astype(numpy.float64)")
    elif kind in "iub":
        votes.add(numpy.dtype(numpy.float64))
    elif kind == "c":
        raise TypeError(f"argument {name}: complex {'numbers are' if scalar else 'arrays are'} "
                        f"not supported (dtype {a.dtype})")
    elif scalar:
        raise TypeError(f"argument {name}: expected a real number, got dtype {a.dtype}")
    else:
        raise TypeError(f"argument {name}: expected a real numeric array, got dtype {a.dtype}")


def _check_shape(a, name, shape, dims):
    """Check the 2-D array ``a`` against ``shape``; record the sizes of named dimensions in ``dims``
    (name → (size, the argument that set it))."""
    if a.ndim != 2:
        raise ValueError(f"argument {name}: expected a 2-D array of shape {_shape_text(shape)}, "
                         f"got a {a.ndim}-D array of shape {a.shape}")
    for d, size in zip(shape, a.shape):
        if (size != d) if d.__class__ is int else (d in dims and dims[d][0] != size):
            _shape_error(a, name, shape, dims)
    for d, size in zip(shape, a.shape):
        if d.__class__ is not int and d not in dims:
            dims[d] = (size, name)


def _shape_error(a, name, shape, dims):
    expected = []
    sources = []
    for d, size in zip(shape, a.shape):
        if d.__class__ is int:
            expected.append(d)
        elif d in dims:
            expected.append(dims[d][0])
            if dims[d][0] != size and dims[d][1] not in sources:
                sources.append(dims[d][1])
        else:
            expected.append(size)
    where = f" from {', '.join(sources)}" if sources else ""
    raise ValueError(f"argument {name}: expected shape {_shape_text(shape)} = "
                     f"{_shape_text(expected)}{where}, got {_shape_text(a.shape)}")


def _cast(x, dtype):
    return x if x.dtype == dtype else x.astype(dtype)


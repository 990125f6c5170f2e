"""The Dask backend's argument checks and run-time helpers (:mod:`numeric.dask_backend`): dask.array
and NumPy only.

Its source is copied into every generated Dask module.  Everything here reads shapes, chunks and
dtypes, never values: a kernel call builds a task graph and computes nothing.  A NumPy array (or a
number, for a scalar argument) is wrapped as a one-chunk dask array, not copied; the dtype rule is
NumPy's (float32 and float64 kept when all agree, float16 computed in float32, integers, booleans
and mixed dtypes in float64; complex refused).

Functions of a square matrix that dask.array lacks (det, slogdet, inv, solve, kron, the matrix
exponential and fractional powers) run as one NumPy call on one worker, lazily (:func:`_one_block`):
the matrix is gathered into one chunk there.  They are meant for parameter-sized matrices (d×d);
the sums over the rows of a chunked X never need them.
"""
import dask
import dask.array as da
import numpy
from dask.array.ufunc import ufunc as _dask_ufunc

from numeric.chain_order import _multi_dot  # noqa: F401  (copied in: library-neutral)
from numeric.numpy_checks import _as_ndarray, _check_shape, _vote  # copied in (library-neutral)


def _wrap(a, name):
    """``a`` as a dask array: a dask array as it is (refused if its shape is unknown or its chunks are
    masked), anything else through NumPy's checks as one chunk."""
    if not isinstance(a, da.Array):
        a = _as_ndarray(a, name)
        return da.from_array(a, chunks=a.shape or ())
    if any(s != s for s in a.shape):
        raise ValueError(f"argument {name}: the dask array's shape {a.shape} has unknown lengths; "
                         f"call {name}.compute_chunk_sizes() first")
    if isinstance(getattr(a, "_meta", None), numpy.ma.MaskedArray):
        raise TypeError(f"argument {name}: masked arrays are not supported (the mask would be ignored)")
    return a


def _prepare(arrays, spec, signature, dtype):
    """Check ``arrays`` (dask or NumPy arrays; numbers for scalar arguments) against ``spec`` by
    their shapes and dtypes; return them as dask arrays of one float dtype, and that dtype."""
    if len(arrays) != len(spec):
        raise TypeError(f"{signature} takes {len(spec)} argument{'s' if len(spec) != 1 else ''}, "
                        f"got {len(arrays)}")
    dims, floats, scalar_floats, out = {}, set(), set(), []
    for a, (name, shape) in zip(arrays, spec):
        a = _wrap(a, name)
        _vote(a, name, shape is None, floats if shape is not None else scalar_floats, dtype)
        if shape is None:
            if a.size != 1:
                raise ValueError(f"argument {name}: expected a scalar (a real number or an array of size 1), "
                                 f"got an array of shape {a.shape}")
            a = a.reshape(())
        else:
            _check_shape(a, name, shape, dims)
        out.append(a)
    if dtype is None:
        floats = floats or scalar_floats
        dtype = floats.pop() if len(floats) == 1 else numpy.dtype(numpy.float64)
    return [a if a.dtype == dtype else a.astype(dtype) for a in out], dtype


def _result(x, dtype):
    """An output as a dask array of ``dtype`` (a constant output too)."""
    if isinstance(x, da.Array):
        return x if x.dtype == dtype else x.astype(dtype)
    return da.from_array(numpy.asarray(x, dtype=dtype), chunks=())


def _ufunc(f):
    """The NumPy ufunc ``f`` (one that dask.array does not wrap, such as heaviside) applied per chunk."""
    return _dask_ufunc(f)


def _one_block(fn, shape, dtype, *args):
    """``fn(*args)`` as one NumPy call on one worker, lazily: each dask array among ``args`` arrives
    there as one NumPy array (for a square parameter matrix; not for a matrix as long as the data)."""
    return da.from_delayed(dask.delayed(fn, pure=True)(*args), shape=shape, dtype=dtype)


def _slogdet(A):
    """(sign, log|det A|) as one array of two numbers."""
    sign, logabs = numpy.linalg.slogdet(A)
    return numpy.stack([sign, logabs])


def _solve(A, B):
    """A⁻¹B: A gathered into one chunk, B solved column chunk by column chunk (lazily)."""
    return da.blockwise(numpy.linalg.solve, "ij", A.rechunk(-1), "ik", B.rechunk({0: -1}), "kj",
                        dtype=numpy.result_type(A.dtype, B.dtype), concatenate=True)


def _diagflat(v):
    return da.diag(v.ravel())


def _matrix_power_int(A, k):
    """Aᵏ for an integer k ≥ 0 by repeated squaring, chunked as A."""
    out, base = None, A
    while k:
        if k & 1:
            out = base if out is None else out @ base
        k >>= 1
        if k:
            base = base @ base
    return da.eye(A.shape[0], chunks=A.chunks[0], dtype=A.dtype) if out is None else out



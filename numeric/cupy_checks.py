"""The CuPy backend's argument checks and run-time helpers (:mod:`numeric.array_backends`): cupy only.

Its source is copied into every generated CuPy module.  Arguments are ``cupy.ndarray`` on one GPU
and results stay there: a NumPy array is refused rather than copied to the device behind the
caller's back (``cupy.asarray(X)`` moves it), and nothing is copied to the host.  CuPy has no
``matrix`` or masked array class, so only the dtype and shape need checking: float32 and float64
keep their dtype when all agree, float16 computes in float32, integers, booleans and mixed dtypes
in float64; complex is refused.  CuPy has no ``linalg.multi_dot``: :func:`numeric.chain_order._multi_dot` chooses the
order of a chain of products as NumPy's does.
"""
import cupy

from numeric.chain_order import _multi_dot  # noqa: F401  (copied in: library-neutral)
from numeric.numpy_checks import _check_shape  # copied in with the module (library-neutral)

_FLOATS = {"f": cupy.float32, "d": cupy.float64}


def _vote(a, name, votes):
    kind = a.dtype.kind
    if kind == "c":
        raise TypeError(f"argument {name}: complex arrays are not supported (dtype {a.dtype})")
    if kind == "f":
        votes.add(a.dtype.char if a.dtype.char in "fd" else "f")
    elif kind in "iub":
        votes.add("d")
    else:
        raise TypeError(f"argument {name}: expected a real numeric array, got dtype {a.dtype}")


def _prepare(arrays, spec, signature, dtype):
    """Check ``arrays`` (cupy arrays; Python numbers for scalar arguments) against ``spec``; return
    them as cupy arrays of one float dtype on one device, and that dtype."""
    if len(arrays) != len(spec):
        raise TypeError(f"{signature} takes {len(spec)} argument{'s' if len(spec) != 1 else ''}, "
                        f"got {len(arrays)}")
    dims, floats, device = {}, set(), None
    for a, (name, shape) in zip(arrays, spec):
        if isinstance(a, cupy.ndarray):
            if device is None:
                device = a.device
            elif a.device != device:
                raise ValueError(f"argument {name}: on device {a.device}, the others on {device}")
            if shape is None:
                if a.size != 1 or a.dtype.kind not in "fiub":
                    raise ValueError(f"argument {name}: expected a scalar (a real number or an array of "
                                     f"size 1), got an array of shape {a.shape}, dtype {a.dtype}")
                continue
            _vote(a, name, floats)
            _check_shape(a, name, shape, dims)
        elif shape is not None:
            raise TypeError(f"argument {name}: expected a cupy.ndarray (backend 'cupy'), got "
                            f"{type(a).__module__}.{type(a).__name__}; move it to the GPU with cupy.asarray")
        elif isinstance(a, bool) or not isinstance(a, (int, float)):
            raise TypeError(f"argument {name}: expected a real number or an array of size 1, "
                            f"got {type(a).__name__}")
    if dtype is None:
        dtype = _FLOATS[floats.pop()] if len(floats) == 1 else cupy.float64
    # a Python number becomes a scalar of the dtype (which CuPy broadcasts), a size-1 array a 0-d one
    out = [(a.astype(dtype).reshape(()) if isinstance(a, cupy.ndarray) else dtype(a)) if shape is None
           else a if a.dtype == dtype else a.astype(dtype) for a, (_, shape) in zip(arrays, spec)]
    return out, dtype

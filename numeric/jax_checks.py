"""The JAX backend's argument checks (:mod:`numeric.array_backends`): jax.numpy only.

Its source is copied into every generated JAX module.  The checks read shapes and dtypes only,
which are static under ``jax.jit``: a kernel is traced once per shape and dtype.  float32 and
float64 (with ``jax_enable_x64``) keep their dtype when all agree, float16/bfloat16 compute in
float32, integers, booleans and mixed dtypes in the widest float JAX allows; complex is refused.
"""
import jax
import jax.numpy as jnp

from numeric.numpy_checks import _check_shape  # copied in with the module (library-neutral)


def _prepare(arrays, spec, signature, dtype):
    """Check ``arrays`` (JAX or NumPy arrays; Python numbers for scalar arguments) against
    ``spec``; return them as JAX arrays of one float dtype, and that dtype."""
    if len(arrays) != len(spec):
        raise TypeError(f"{signature} takes {len(spec)} argument{'s' if len(spec) != 1 else ''}, "
                        f"got {len(arrays)}")
    dims, floats = {}, set()
    widest = jnp.dtype(jnp.float64) if jax.config.jax_enable_x64 else jnp.dtype(jnp.float32)
    out = []
    for a, (name, shape) in zip(arrays, spec):
        number = isinstance(a, (int, float, jax.Array)) or hasattr(a, "dtype")
        if shape is None and (isinstance(a, bool) or not number):
            raise TypeError(f"argument {name}: expected a real number or an array of size 1, "
                            f"got {type(a).__name__}")
        if shape is not None and not (isinstance(a, jax.Array) or hasattr(a, "__array__")):
            raise TypeError(f"argument {name}: expected a JAX array (backend 'jax'), got {type(a).__name__}")
        a = jnp.asarray(a)
        kind = a.dtype.kind
        if kind == "c":
            raise TypeError(f"argument {name}: complex arrays are not supported (dtype {a.dtype})")
        if kind not in "fiub":
            raise TypeError(f"argument {name}: expected a real numeric array, got dtype {a.dtype}")
        if shape is None:
            if a.size != 1:
                raise ValueError(f"argument {name}: expected a scalar (a real number or an array of "
                                 f"size 1), got an array of shape {a.shape}")
            out.append(a.reshape(()))
            continue
        if kind == "f":
            floats.add(a.dtype if a.dtype in (jnp.float32, jnp.float64) else jnp.dtype(jnp.float32))
        else:
            floats.add(widest)
        _check_shape(a, name, shape, dims)
        out.append(a)
    if dtype is None:
        dtype = floats.pop() if len(floats) == 1 else widest
    return [a if a.dtype == dtype else a.astype(dtype) for a in out], dtype

"""The PyTorch backend's argument checks and run-time helpers (:mod:`numeric.array_backends`): torch only.

Its source is copied into every generated torch module.  Tensors stay on their device; float32
and float64 keep their dtype when all agree, float16/bfloat16 compute in float32, integers,
booleans and mixed dtypes in float64; complex is refused.
"""
import torch

from numeric.numpy_checks import _check_shape  # copied in with the module (library-neutral)

# the dtypes of the fast path of a kernel's argument checks (numpy_backend._fast_check)
_F64, _F32 = torch.float64, torch.float32


def _pair(a, b):
    """``a``, ``b`` with a Python number made a tensor like the other (torch.maximum & co. take tensors)."""
    if not isinstance(a, torch.Tensor):
        a = torch.as_tensor(a, dtype=b.dtype, device=b.device)
    if not isinstance(b, torch.Tensor):
        b = torch.as_tensor(b, dtype=a.dtype, device=a.device)
    return a, b


def _maximum(a, b):
    return torch.maximum(*_pair(a, b))


def _minimum(a, b):
    return torch.minimum(*_pair(a, b))


def _logaddexp(a, b):
    return torch.logaddexp(*_pair(a, b))


def _heaviside(a, b):
    return torch.heaviside(*_pair(a, b))


def _vote(a, name, votes):
    if a.is_complex():
        raise TypeError(f"argument {name}: complex tensors are not supported (dtype {a.dtype})")
    if a.dtype in (torch.float32, torch.float64):
        votes.add(a.dtype)
    elif a.is_floating_point():
        votes.add(torch.float32)
    else:
        votes.add(torch.float64)


def _prepare(arrays, spec, signature, dtype):
    """Check ``arrays`` (torch tensors; Python numbers for scalar arguments) against ``spec``;
    return them in one float dtype on one device, and that dtype and device."""
    if len(arrays) != len(spec):
        raise TypeError(f"{signature} takes {len(spec)} argument{'s' if len(spec) != 1 else ''}, "
                        f"got {len(arrays)}")
    dims, floats, device = {}, set(), None
    for a, (name, shape) in zip(arrays, spec):
        if isinstance(a, torch.Tensor):
            if device is None:
                device = a.device
            elif a.device != device:
                raise ValueError(f"argument {name}: on device {a.device}, the others on {device}")
            if shape is not None:
                _vote(a, name, floats)
        elif shape is not None:
            raise TypeError(f"argument {name}: expected a torch.Tensor (backend 'torch'), "
                            f"got {type(a).__name__}")
        elif isinstance(a, bool) or not isinstance(a, (int, float)):
            raise TypeError(f"argument {name}: expected a real number or a tensor of size 1, "
                            f"got {type(a).__name__}")
        if shape is None:
            if isinstance(a, torch.Tensor) and (a.numel() != 1 or a.is_complex()):
                raise ValueError(f"argument {name}: expected a scalar (a real number or a tensor of "
                                 f"size 1), got a tensor of shape {tuple(a.shape)}")
            continue
        _check_shape(a, name, shape, dims)
    if dtype is None:
        dtype = floats.pop() if len(floats) == 1 else torch.float64
    out = [torch.as_tensor(a, dtype=dtype, device=device).reshape(()) if shape is None
           else a if a.dtype == dtype else a.to(dtype) for a, (_, shape) in zip(arrays, spec)]
    return out, dtype, device

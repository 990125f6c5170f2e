"""tracegrad jac and tracegrad hess, in process: the derivation, the summary line, the one-line errors."""
from __future__ import annotations

import pytest

from derive.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_jac_of_a_vector_function(capsys) -> None:
    status, out, _ = run(capsys, "jac", "sigmoid(W*x)", "--wrt", "x", "--shape", "W=3,4", "x=4,1")
    assert status == 0
    assert "Derive ∂F/∂xᵀ" in out and "[vectorize]" in out
    assert "∂F/∂xᵀ  3×4  diag(σ(Wx) ⊙ (𝟏₃ - σ(Wx)))W" in out


def test_hess_and_hvp(capsys) -> None:
    status, out, _ = run(capsys, "hess", "x'*A*x", "--wrt", "x", "--shape", "x=n,1", "A=n,n", "--lang", "zh")
    assert status == 0 and "第二识别定理" in out and "∂²f/∂x∂xᵀ  n×n  A + Aᵀ" in out
    status, out, _ = run(capsys, "hess", "norm2(X*W - Y)^2", "--wrt", "W", "--direction", "V",
                         "--shape", "X=n,d", "Y=n,k")
    assert status == 0 and "∇²f(W)[V]  d×k  2XᵀXV" in out
    status, out, _ = run(capsys, "hess", "norm2(X*W - Y)^2", "--wrt", "W", "--shape", "X=n,d", "Y=n,k",
                         "--format", "latex")
    assert status == 0 and r"\otimes" in out


@pytest.mark.parametrize(("argv", "message"), [
    (("jac", "x'*x", "--wrt", "x", "--shape", "x=3,1"), "its Jacobian is the gradient: use tracegrad grad"),
    (("hess", "X*W", "--wrt", "W", "--shape", "X=4,3", "W=3,2"), "a Hessian needs a scalar function"),
    (("jac", "X*W", "--wrt", "Q", "--shape", "X=4,3", "W=3,2"), "--wrt Q: not a matrix in the expression"),
    (("hess", "norm2(X*W)^2", "--wrt", "W", "--direction", "X", "--shape", "X=4,3", "W=3,2"), "give a new name"),
])
def test_errors_are_one_line(capsys, argv, message) -> None:
    status, _, err = run(capsys, *argv)
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1

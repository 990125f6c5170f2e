"""The command line under unbounded input: one line and exit status 2, quickly; ``--dims`` with
huge dimensions ends by saying why the gradient check is skipped, not in a MemoryError."""
from __future__ import annotations

import argparse
import time

import pytest

from derive.cli import main, parse_dims

FAST = 5.0


def _one_line_error(capsys, argv: list[str]) -> str:
    start = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - start < FAST
    err = capsys.readouterr().err
    assert err.startswith("tracegrad: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("argv, fragment", [
    (["grad", "(2*c)^(10^8)*tr(X'*X)", "--wrt", "X", "--shape", "X=n,d", "c="], "30103000 digits"),
    (["grad", "(1e300*c)^(1e300)*tr(X'*X)", "--wrt", "X", "--shape", "X=n,d", "c="], "3.0e+302 digits"),
    (["grad", "3^10000*tr(X'*X)", "--wrt", "X", "--shape", "X=n,d"], "4772 digits"),
    (["grad", "sum(" + "sigmoid(" * 90 + "X" + ")" * 91, "--wrt", "X", "--shape", "X=n,d"],
     "f nests 90 functions"),
    (["grad", "tr(" + "inv(A + " * 40 + "A" + ")" * 41, "--wrt", "A", "--shape", "A=n,n"], "f nests 40 functions"),
    (["check", "(2*n)^(10^300)*2*H'*(Ypred - Y)", "--wrt", "W2"], "3.0e+299 digits"),
    (["--dims", "n=10^16"], "more than 10^15, the largest dimension (derive.limits.MAX_DIMENSION)"),
    (["--dims", "n=10^99999"], "derive.limits.MAX_DIMENSION"),
])
def test_unbounded_input_is_one_line(capsys, argv: list[str], fragment: str) -> None:
    assert fragment in _one_line_error(capsys, argv)


def test_huge_dims_end_with_the_check_skipped_and_why(capsys) -> None:
    # was a NumPy MemoryError traceback after the derivation
    start = time.perf_counter()
    assert main(["--dims", "n=10^12"]) == 0
    assert time.perf_counter() - start < 60
    out, err = capsys.readouterr()
    assert err == ""
    assert "Gradient check skipped: X has 3,000,000,000,000 entries, more than a check by central " \
           "differences takes (1,000,000)." in " ".join(out.split())


def test_parse_dims_reads_powers() -> None:
    assert parse_dims("n=10^12,d=2e3,m=64") == {"n": 10**12, "d": 2000, "m": 64}
    for bad in ("n=10^", "n=e5", "n=0e5", "n=1.5e3"):
        with pytest.raises(argparse.ArgumentTypeError, match="must be a positive integer"):
            parse_dims(bad)


def test_grad_states_the_elementwise_reading_in_both_languages(capsys) -> None:
    assert main(["grad", "tr(exp(A))", "--wrt", "A", "--shape", "A=n,n"]) == 0
    assert "exp(A) is the elementwise exponential (of each entry), not the matrix exponential" in \
        capsys.readouterr().out
    assert main(["grad", "tr(exp(A))", "--wrt", "A", "--shape", "A=n,n", "--lang", "zh"]) == 0
    assert "exp(A) 是逐元素指数（对每个元素），不是矩阵指数" in capsys.readouterr().out


def test_check_accepts_the_printed_gradient(capsys) -> None:
    assert main(["check", "2Xᵀ[((Ypred − Y)W2ᵀ) ⊙ σ(h) ⊙ (𝟏 − σ(h))]", "--wrt", "W1"]) == 0
    assert capsys.readouterr().out.startswith("correct")
    assert main(["check", "2*H^T@(Y_pred − Y)", "--wrt", "W2"]) == 0
    assert capsys.readouterr().out.startswith("correct")
    # the seed write-up's own names: h_sigmoid = sigmoid(h), Y_pred, W_2
    assert main(["check", "2*X'*(((Y_pred - Y)*W_2') .* h_sigmoid .* (1 - h_sigmoid))", "--wrt", "W1"]) == 0
    assert capsys.readouterr().out.startswith("correct")
    assert main(["check", "2*h_sigmoid'*(Y_pred - Y)", "--wrt", "W2"]) == 0
    assert capsys.readouterr().out.startswith("correct")

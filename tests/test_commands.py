"""The subcommands grad, check, audit and codegen, end to end through derive.cli.main."""
from __future__ import annotations

import json

import importlib.util
import shutil

import numpy as np
import pytest

from derive.cli import main
from tests.oracle import seed_data

SEED = "norm2(Y - (sigmoid(X*W1 + b1)*W2 + b2))^2"
SHAPES = ["X=n,d", "Y=n,k", "W1=d,m", "b1=1,m", "W2=m,k", "b2=1,k"]


def _load(path):
    spec = importlib.util.spec_from_file_location("generated", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _loss(X, Y, W1, b1, W2, b2):
    return float(np.sum((Y - (_sig(X @ W1 + b1) @ W2 + b2)) ** 2))


def test_grad_prints_derivation_broadcast_note_and_table(capsys) -> None:
    assert main(["grad", SEED, "--wrt", "W1,b1", "--shape", *SHAPES]) == 0
    out = capsys.readouterr().out
    assert "Derive ∂f/∂W1" in out and "Derive ∂f/∂b1" in out
    assert "b1 (1×m) broadcast over the n rows as 1ₙ·b1" in out
    assert "∂f/∂W1  d×m  2Xᵀ[(" in out


def test_grad_codegen_matches_finite_differences(tmp_path, capsys, seed_values) -> None:
    target = tmp_path / "grads.py"
    assert main(["grad", SEED, "--wrt", "W1,b2", "--shape", *SHAPES, "--codegen", str(target)]) == 0
    capsys.readouterr()
    module = _load(target)
    v = seed_values
    rng = np.random.default_rng(10)
    f, gW1, gb2 = module.f_and_gradients(*(v[name] for name in ("X", "Y", "W1", "b1", "W2", "b2")))
    assert f == pytest.approx(_loss(**v), rel=1e-12)
    for name, g in (("W1", gW1), ("b2", gb2)):
        V = rng.standard_normal(v[name].shape)
        plus, minus = dict(v), dict(v)
        plus[name] = v[name] + 1e-6 * V
        minus[name] = v[name] - 1e-6 * V
        fd = (_loss(**plus) - _loss(**minus)) / 2e-6
        assert np.sum(g * V) == pytest.approx(fd, rel=1e-6)


def test_grad_codegen_with_a_scalar_argument_matches_finite_differences(tmp_path, capsys) -> None:
    # lam= declares a scalar: it becomes an argument of the module, in --shape order
    target = tmp_path / "ridge.py"
    argv = ["grad", "norm2(X*W - Y)^2 + lam*norm2(W)^2", "--wrt", "W",
            "--shape", "X=n,d", "W=d,k", "Y=n,k", "lam=", "--codegen", str(target)]
    assert main(argv) == 0
    capsys.readouterr()
    module = _load(target)
    assert [name for name, _ in module._SPEC] == ["X", "W", "Y", "lam"]
    rng = np.random.default_rng(2)
    n, d, k = 6, 3, 4
    X, W, Y = rng.standard_normal((n, d)), rng.standard_normal((d, k)), rng.standard_normal((n, k))
    lam = 0.7

    def loss(W):
        return float(np.sum((X @ W - Y) ** 2) + lam * np.sum(W ** 2))

    f, gW = module.f_and_gradients(X, W, Y, lam)
    assert f == pytest.approx(loss(W), rel=1e-12)
    fd = np.zeros_like(W)
    for idx in np.ndindex(*W.shape):
        E = np.zeros_like(W)
        E[idx] = 1e-6
        fd[idx] = (loss(W + E) - loss(W - E)) / 2e-6
    np.testing.assert_allclose(gW, fd, rtol=1e-6, atol=1e-8)
    f32, g32 = module.f_and_gradients(X.astype(np.float32), W.astype(np.float32), Y.astype(np.float32), lam)
    assert g32.dtype == np.float32 and np.asarray(f32).dtype == np.float32


@pytest.mark.parametrize("argv,message", [
    (["grad", "tr(X*W", "--wrt", "W", "--shape", "X=n,d"], "column 3: '(' at column 3 is never closed"),
    (["grad", "tr(X*W)", "--wrt", "W", "--shape", "X=n,d", "W=n,d"], "column 5: '*' joins X (n×d) with W (n×d)"),
    (["grad", "X*W", "--wrt", "W", "--shape", "X=n,d", "W=d,m"], "is a n×m matrix; a gradient needs a scalar"),
    (["grad", "tr(X'*X)", "--wrt", "Q", "--shape", "X=n,d"], "--wrt Q: not a matrix in the expression"),
    (["grad", "tr(X'*X)", "--wrt", "X", "--shape", "X=n"], "--shape: expected NAME=ROWS,COLS"),
    (["grad", "__import__('os').system('true')", "--wrt", "X"], "column"),
    (["grad", "tr(X'*X)", "--wrt", ",", "--shape", "X=n,d"], "--wrt: no variable in ','"),
])
def test_grad_errors_are_one_line(argv, message, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tracegrad: error: ")
    assert message in err


@pytest.mark.parametrize("argv", [
    ["grad", "tr(X'*X)", "--wrt", "X", "--shape", "X=n,d", "--codegen"],
    ["codegen", "-o"],
])
def test_unwritable_module_is_one_line(argv, tmp_path, capsys) -> None:
    target = tmp_path / "no such folder" / "grads.py"
    assert main([*argv, str(target)]) == 2
    err = capsys.readouterr().err
    assert err == f"tracegrad: error: cannot write {target}: No such file or directory\n"


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_grad_pdf(tmp_path, capsys) -> None:
    target = tmp_path / "g.pdf"
    assert main(["grad", "logdet(X'*C*X)", "--wrt", "X", "--shape", "X=n,d", "C=n,n", "-o", str(target)]) == 0
    assert target.read_bytes().startswith(b"%PDF")


def test_check_exit_status(capsys) -> None:
    assert main(["check", "2*H'*(Ypred - Y)", "--wrt", "W2"]) == 0
    assert "correct" in capsys.readouterr().out
    assert main(["check", "2*(Ypred - Y)", "--wrt", "b2"]) == 1
    assert "wrong shape: ∂f/∂b2 is 1×k, the answer is n×k" in capsys.readouterr().out
    assert main(["check", "2*(Ypred - Y)", "--wrt", "b2", "--bias", "full"]) == 0


def test_audit_is_the_grade_of_the_seed_writeup(capsys, tmp_path) -> None:
    assert main(["audit"]) == 0
    out = capsys.readouterr().out
    assert main(["grade", "seed"]) == 0
    assert capsys.readouterr().out == out
    assert "47 equations: 36 correct, 8 correct under a reading, 3 not checked." in out
    assert "line 111 · result · correct under a reading" in out and "line 45 · definition · not checked" in out
    assert main(["audit", "--lang", "zh", "-o", str(tmp_path / "audit.md")]) == 0
    md = (tmp_path / "audit.md").read_text(encoding="utf-8")
    assert md.startswith("# seed 的批改") and "| 111 | 0 | 结果 | **某种理解下正确** |" in md
    assert main(["audit", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 47


def test_codegen_module_computes_the_seed_gradients(tmp_path, capsys) -> None:
    target = tmp_path / "seed_grads.py"
    assert main(["codegen", "-o", str(target)]) == 0
    assert "wrote" in capsys.readouterr().out
    module = _load(target)
    X, Y, W1, b1, W2, b2 = seed_data(seed=1).values()
    f, gW1, gb1, gW2, gb2 = module.seed_loss_and_gradients(X, Y, W1, b1, W2, b2)
    H = _sig(X @ W1 + b1)
    E = H @ W2 + b2 - Y
    Gh = 2 * (E @ W2.T) * H * (1 - H)
    assert f == pytest.approx(np.sum(E ** 2), rel=1e-12)
    np.testing.assert_allclose(gW1, X.T @ Gh, rtol=1e-10)
    np.testing.assert_allclose(gb1, Gh.sum(axis=0, keepdims=True), rtol=1e-10)
    np.testing.assert_allclose(gW2, 2 * H.T @ E, rtol=1e-12)
    np.testing.assert_allclose(gb2, 2 * E.sum(axis=0, keepdims=True), rtol=1e-12)


def test_default_run_ends_with_check_and_audit(capsys) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "Gradient check (random non-square data n=4, d=3, m=5, k=2" in out and "passed" in out
    # the audit last, as an aligned table (its Markdown is for `tracegrad audit -o audit.md`)
    audit = out[out.index("Audit of the seed document"):]
    assert "|---|" not in audit and "─────" in audit
    last = audit.rstrip().split("\n\n")[-1]  # the last row: the summary's ∂f/∂b2, right for an n×k bias
    assert "∂f/∂b2 = 2(Y_pred" in last and "131" in last and "correct under" in last


# --- issue 8, items 10 and 11 -------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["grad", "-tr(A*B)", "--wrt", "A", "--shape", "A=n,m", "B=m,n"],
    ["grad", "--shape", "A=n,m", "B=m,n", "-tr(A*B)", "--wrt", "A"],
    ["grad", "--wrt", "A", "--shape", "A=n,m", "B=m,n", "--", "-tr(A*B)"],
    ["grad", "--shape", "A=n,m", "--wrt", "A", "--shape", "B=m,n", "-tr(A*B)"],
    ["grad", "--shape=A=n,m", "B=m,n", "-tr(A*B)", "--wrt=A"],
    ["grad", "--shape", "A=n,m B=m,n", "-2*tr(A*B)/2", "--wrt", "A"],
])
def test_an_expression_starting_with_minus_and_shapes_before_or_after(argv, capsys) -> None:
    # ∂(−tr(AB))/∂A = −Bᵀ, whatever the order of the arguments
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1].split() == ["∂f/∂A", "n×m", "-Bᵀ"]


def test_the_dash_expression_gets_the_same_numbers(tmp_path, capsys) -> None:
    target = tmp_path / "neg.py"
    assert main(["grad", "--shape", "X=n,d", "W=d,k", "Y=n,k", "-norm2(X*W - Y)^2", "--wrt", "W",
                 "--codegen", str(target)]) == 0
    capsys.readouterr()
    module = _load(target)
    rng = np.random.default_rng(4)
    X, W, Y = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal((4, 2))
    f, gW = module.f_and_gradients(X, W, Y)
    assert f == pytest.approx(-np.sum((X @ W - Y) ** 2), rel=1e-12)
    np.testing.assert_allclose(gW, -2 * X.T @ (X @ W - Y), rtol=1e-12)  # the Cookbook's (84), negated


@pytest.mark.parametrize("text", ["sqrt(-1)*tr(A)", "tr(A)*(-1)^0.5", "log(-2)*tr(A)", "((-c)/c)^0.5*tr(A)"])
def test_complex_values_are_refused_in_the_projects_words(text, capsys) -> None:
    assert main(["grad", text, "--wrt", "A", "--shape", "A=n,n", "c="]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tracegrad: error: column ")
    assert err.rstrip().endswith("is not a real number; complex values are not supported")
    assert "ImaginaryUnit" not in err


def test_missing_shape_hint_shows_the_command_line_syntax(capsys) -> None:
    assert main(["grad", "c*tr(A)", "--wrt", "A", "--shape", "A=n,n"]) == 2
    err = capsys.readouterr().err
    assert "declare it with --shape c=ROWS,COLS, or --shape c= for a scalar" in err
    assert "shapes=" not in err
    # with the hint followed, it works
    assert main(["grad", "c*tr(A)", "--wrt", "A", "--shape", "A=n,n", "c="]) == 0
    assert capsys.readouterr().out.rstrip().endswith("c·I")


def test_codegen_failure_comes_before_the_derivation_in_the_projects_words(tmp_path, capsys) -> None:
    # m is the size of no argument: the module could not know it
    target = tmp_path / "g.py"
    argv = ["grad", "tr(A*ones(n,m)*ones(m,n))", "--wrt", "A", "--shape", "A=n,n", "--codegen", str(target)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("tracegrad: error: --codegen: f depends on the dimension m, which is the size of "
                            "no matrix argument, so the module could not know it; declare a matrix of that "
                            "size with --shape or give the dimension as a number\n")
    assert not target.exists()
    # the same with m the size of an argument
    argv = ["grad", "tr(A*ones(n,m)*B)", "--wrt", "A", "--shape", "A=n,n", "B=m,n", "--codegen", str(target)]
    assert main(argv) == 0
    assert target.exists()


def test_codegen_failure_from_numeric_is_stated_before_printing(monkeypatch, tmp_path, capsys) -> None:
    import sys

    from numeric.ir import UnsupportedExpression

    def fail(*args, **kwargs):
        raise UnsupportedExpression("function foo has no NumPy translation in numeric")

    monkeypatch.setattr(sys.modules["numeric.compile"], "generate", fail)
    argv = ["grad", "tr(A'*A)", "--wrt", "A", "--shape", "A=n,d", "--codegen", str(tmp_path / "g.py")]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("tracegrad: error: --codegen: no NumPy module for this function: function foo has "
                            "no NumPy translation in numeric\n")

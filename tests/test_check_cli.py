"""``tracegrad check`` end to end through derive.cli.main: the verdict, the step it names, both
languages, every variable of the network, and the exit status (0 right, 1 wrong, 2 user error)."""
from __future__ import annotations

import re

import pytest

from derive.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(["check", *argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("answer", ["2*X'*((Ypred - Y)*W2')", "2*X'*(Ypred - Y)*W2'"])
def test_forgotten_sigma_prime_names_the_step_to_h(capsys, answer: str) -> None:
    status, out, _ = _run(capsys, answer, "--wrt", "W1")
    assert status == 1
    assert "∂f/∂H is right (as 2(Ypred - Y)W2ᵀ)" in out
    assert "the step from ∂f/∂H to ∂f/∂h is where the answer first differs" in out
    assert re.search(r"counterexample \(n=\d, d=\d, m=\d, k=\d\)", out)
    assert "counterexample (n=1, d=1, m=1, k=1)" not in out


@pytest.mark.parametrize("wrt,answer", [
    ("h", "2*((Ypred - Y)*W2') .* sigmoid(h) .* (1 - sigmoid(h))"),
    ("H", "2*(Ypred - Y)*W2'"),
    ("Ypred", "2*(Ypred - Y)"),
    ("W2", "2*H'*(Ypred - Y)"),
])
def test_every_intermediate_is_a_variable(capsys, wrt: str, answer: str) -> None:
    status, out, _ = _run(capsys, answer, "--wrt", wrt)
    assert status == 0 and out.startswith(f"correct: the answer equals ∂f/∂{wrt} = ")


def test_chinese_before_or_after_the_command(capsys) -> None:
    status, out, _ = _run(capsys, "2*H'*(Y - Ypred)", "--wrt", "W2", "--lang", "zh")
    assert status == 1
    assert out.startswith("错误：答案与 ∂f/∂W2 = 2Hᵀ(Ypred - Y) 不同")
    assert "答案是 ∂f/∂W2 的 −1 倍：符号错误" in out and "反例（" in out
    assert main(["--lang", "zh", "check", "2*H'*(Ypred - Y)", "--wrt", "W2"]) == 0
    assert capsys.readouterr().out.startswith("正确：答案等于 ∂f/∂W2")


def test_a_mean_loss_factor_and_cancellation(capsys) -> None:
    status, out, _ = _run(capsys, "H'*(Ypred - Y)/(n*k)", "--wrt", "W2")
    assert status == 1 and "the answer is 1/(2·k·n) times ∂f/∂W2" in out
    status, out, _ = _run(capsys, "2*(H'*(Ypred + 1e9) - H'*(Y + 1e9))", "--wrt", "W2")
    assert status == 0
    status, out, _ = _run(capsys, "2*(H'*(Ypred + 1e9) - H'*(Y + 1e9))*(1 + 1e-8)", "--wrt", "W2")
    assert status == 1 and "1.00000001 times" in out


@pytest.mark.parametrize("argv,message", [
    (["2*X", "--wrt", "W3"], "'W3' is not a variable of the network; choose from X, Y, W1, b1, W2, b2, Ypred, H, h"),
    (["2*X'*(Ypred - ", "--wrt", "W1"], "column"),
    (["2*H'*(Ypre - Y)", "--wrt", "W2"], "unknown name 'Ypre'"),
    (["2*H'*(Ypred - Y)", "--wrt", "W2", "--dims", "n=1000000000000"], "at most 20000 entries"),
    (["2*X", "--wrt", "W3", "--lang", "zh"], "'W3' 不是该网络的变量"),
])
def test_user_errors_are_one_line_and_status_2(capsys, argv: list[str], message: str) -> None:
    status, out, err = _run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.startswith("tracegrad: error: ") and err.count("\n") == 1 and message in err

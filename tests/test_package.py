"""The package as a user imports it: ``import derive``, its submodules, its version, its messages."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sympy

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          encoding="utf-8", timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_derive_gives_parse_and_check_as_documented() -> None:
    # a fresh interpreter: plain `import derive`, then the attributes the README uses
    out = _python(
        "import sys, derive\n"
        "print('sympy' in sys.modules)\n"
        "print(derive.parse.format_expression(derive.parse.parse_expression("
        "'norm2(Y - X*W)^2', {'X': ('n', 'd'), 'Y': ('n', 'k'), 'W': ('d', 'k')})))\n"
        "print(callable(derive.check.check_answer), callable(derive.backprop), derive.__version__)\n")
    lazy, formula, names = out.splitlines()
    assert lazy == "False"  # import derive loads no SymPy: the command starts (and takes Ctrl-C) at once
    assert formula == "norm2(Y - X*W)^2"
    assert names.split()[:2] == ["True", "True"]


def test_the_function_backprop_is_not_replaced_by_its_module() -> None:
    out = _python(
        "import derive.backprop\n"
        "from derive.backprop import Backprop\n"
        "import derive\n"
        "bp = derive.backprop(derive.seed_network())\n"
        "print(type(bp) is Backprop, sorted(p.name for p in bp.gradients()))\n")
    assert out == "True ['W1', 'W2', 'b1', 'b2']\n"


def test_every_public_name_and_no_other() -> None:
    import derive

    for name in derive.__all__:
        assert getattr(derive, name) is not None
    assert derive.networks.seed_network is derive.seed_network
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        derive.nothing_here  # noqa: B018
    with pytest.raises(ImportError):
        from derive import nothing_here  # noqa: F401


def test_missing_shape_hint_shows_the_python_syntax() -> None:
    from derive.parse import ExpressionError, parse_expression

    with pytest.raises(ExpressionError) as e:
        parse_expression("c*tr(A)", {"A": ("n", "n")})
    assert 'declare it in shapes: shapes={"c": (ROWS, COLS)}, or shapes={"c": ()} for a scalar' in str(e.value)
    assert "--shape" not in str(e.value)
    with pytest.raises(ExpressionError) as e:
        parse_expression("norm2(A*x)^2", {"A": ("n", "n")})
    assert 'shapes={"x": ("n", COLS)}' in str(e.value)
    # the hint followed
    assert str(parse_expression("c*tr(A)", {"A": ("n", "n"), "c": ()})) == "c*Trace(A)"


@pytest.mark.parametrize("text", ["sqrt(-1)*tr(A)", "((-c)/c)^0.5*tr(A)", "log(-1)*tr(A)", "(-8)^(1/3)*tr(A)"])
def test_complex_values_are_refused_by_the_parser(text) -> None:
    from derive.parse import ExpressionError, parse_expression

    with pytest.raises(ExpressionError, match="is not a real number; complex values are not supported"):
        parse_expression(text, {"A": ("n", "n"), "c": ()})


def test_complex_values_are_refused_by_the_engine() -> None:
    import derive

    X = sympy.MatrixSymbol("X", 4, 3)
    with pytest.raises(derive.UnsupportedExpressionError, match="complex values are not supported"):
        derive.gradient(sympy.I * sympy.Trace(X.T * X), X)
    # a real function of the same form is fine: ∂ tr(XᵀX)/∂X = 2X
    assert derive.gradient(2 * sympy.Trace(X.T * X), X) == 4 * X

"""Rules as records (derive.rules, derive.steps.RULES), and the differential rules one at a time.

A differential rule, where it applies, gives d(e) whose value along random directions is the central
difference of e written by hand in NumPy (random non-square data); elsewhere it returns its input
unchanged.  Each law (SymPy objects) holds numerically, its two sides evaluated on random data.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest
import sympy
from sympy import (
    Determinant, HadamardPower, HadamardProduct, Inverse, KroneckerProduct, MatAdd, MatMul, MatPow, MatrixSymbol, Trace,
)
from sympy.matrices.expressions.matexpr import MatrixElement

import derive
from derive.differential import (
    D_CONSTANT_MULTIPLE, D_DETERMINANT, D_ELEMENTWISE, D_ENTRY, D_HADAMARD, D_HADAMARD_POWER, D_INVERSE,
    D_DIAG, D_EXPM, D_KRONECKER, D_MATPOW, D_PRODUCT, D_SCALAR_FUNCTION, D_TRACE_FUNCTION, D_VEC, D_SCALAR_PRODUCT, D_SCALAR_SUM,
    D_SUM, D_TRACE, D_TRANSPOSE,
    DIFFERENTIAL_RULES, RULES_OF_DIFFERENTIALS, MatrixDifferential, ScalarDifferential,
)
from derive.elementwise import sigmoid
from derive.kronecker import Diag, Vec
from derive.laws import FrobeniusSq, Laws, Summation
from derive.render.locale import LANGUAGES, get_locale
from derive.rules import Rule, rule_table
from derive.steps import RULES, Step
from tests.oracle import evaluate

n, d, m, k = 4, 3, 5, 2
EPS = 1e-6
X, Y = MatrixSymbol("X", n, d), MatrixSymbol("Y", n, d)
W = MatrixSymbol("W", d, m)
S = MatrixSymbol("S", d, d)                 # square: inverse, determinant, power, trace
P = MatrixSymbol("P", 1, 1)
a, b = sympy.symbols("a b")


def _data(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    vals = {s: rng.standard_normal(s.shape) for s in (X, Y, W, P)}
    vals[S] = rng.standard_normal((d, d)) + 3 * np.eye(d)
    vals[a], vals[b] = rng.uniform(0.5, 1.5, 2)
    return vals


VALUES, DIRECTIONS = _data(1), _data(2)


def _shifted(t: float, values: dict = VALUES, directions: dict = DIRECTIONS) -> dict:
    return {s: values[s] + t * directions[s] for s in values}


def _evaluate(e, vals) -> np.ndarray:
    """The value of ``e`` (SymPy with explicit matrices, tests.oracle) at ``vals``, scalars included."""
    scalars = {s: sympy.Float(float(x)) for s, x in vals.items() if isinstance(s, sympy.Symbol)}
    return evaluate(e.xreplace(scalars), {s: x for s, x in vals.items() if isinstance(s, MatrixSymbol)})


def directional(e, values: dict = VALUES, directions: dict = DIRECTIONS) -> np.ndarray:
    """The value of an expression holding differentials, each d(M) its central difference along the
    directions (dX is the direction of X itself)."""
    fresh, vals = {}, dict(values)
    for node in sorted(e.atoms(MatrixDifferential, ScalarDifferential), key=sympy.default_sort_key):
        arg = node.args[0]
        fd = (_evaluate(arg, _shifted(EPS, values, directions))
              - _evaluate(arg, _shifted(-EPS, values, directions))) / (2 * EPS)
        if isinstance(node, MatrixDifferential):
            fresh[node] = MatrixSymbol(f"dd{len(fresh)}", *arg.shape)
            vals[fresh[node]] = fd
        else:
            fresh[node] = sympy.Float(float(fd))
    return _evaluate(e.xreplace(fresh), vals)


def _np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


WRT = frozenset({X, Y, W, S, P, a, b})

# rule, d(e) it expands, e by hand (NumPy, of the values), d(…) of another kind it leaves unchanged
CASES = [
    (D_SUM, MatrixDifferential(X + Y), lambda v: v[X] + v[Y], MatrixDifferential(X * W)),
    (D_CONSTANT_MULTIPLE, MatrixDifferential(MatMul(3, X)), lambda v: 3 * v[X], MatrixDifferential(X * W)),
    (D_PRODUCT, MatrixDifferential(X * W), lambda v: v[X] @ v[W], MatrixDifferential(X + Y)),
    (D_HADAMARD, MatrixDifferential(HadamardProduct(X, Y)), lambda v: v[X] * v[Y], MatrixDifferential(X * W)),
    (D_TRANSPOSE, MatrixDifferential(X.T), lambda v: v[X].T, MatrixDifferential(X + Y)),
    (D_TRACE, ScalarDifferential(Trace(S)), lambda v: np.trace(v[S]), MatrixDifferential(S.T)),
    (D_ELEMENTWISE, MatrixDifferential(sigmoid(X)), lambda v: _np_sigmoid(v[X]), MatrixDifferential(X.T)),
    (D_INVERSE, MatrixDifferential(Inverse(S)), lambda v: np.linalg.inv(v[S]), MatrixDifferential(S.T)),
    (D_DETERMINANT, ScalarDifferential(Determinant(S)), lambda v: np.linalg.det(v[S]),
     ScalarDifferential(Trace(S))),
    (D_MATPOW, MatrixDifferential(MatPow(S, 3)), lambda v: v[S] @ v[S] @ v[S], MatrixDifferential(S * S.T)),
    (D_MATPOW, MatrixDifferential(MatPow(S, -2)), lambda v: np.linalg.inv(v[S] @ v[S]), MatrixDifferential(S.T)),
    (D_HADAMARD_POWER, MatrixDifferential(HadamardPower(X, 3)), lambda v: v[X] ** 3,
     MatrixDifferential(HadamardProduct(X, Y))),
    (D_ENTRY, ScalarDifferential(MatrixElement(P, 0, 0)), lambda v: v[P][0, 0], ScalarDifferential(Trace(S))),
    (D_SCALAR_SUM, ScalarDifferential(a + b), lambda v: v[a] + v[b], ScalarDifferential(a * b)),
    (D_SCALAR_PRODUCT, ScalarDifferential(a * b), lambda v: v[a] * v[b], ScalarDifferential(a + b)),
    (D_SCALAR_FUNCTION, ScalarDifferential(sympy.sin(a)), lambda v: np.sin(v[a]), ScalarDifferential(a + b)),
    (D_SCALAR_FUNCTION, ScalarDifferential(a ** 3), lambda v: v[a] ** 3, ScalarDifferential(a * b)),
    (D_SCALAR_FUNCTION, ScalarDifferential(2 ** a), lambda v: 2 ** v[a], ScalarDifferential(a * b)),
    (D_KRONECKER, MatrixDifferential(KroneckerProduct(X, W)), lambda v: np.kron(v[X], v[W]),
     MatrixDifferential(X * W)),
    (D_VEC, MatrixDifferential(Vec(X * W)), lambda v: (v[X] @ v[W]).reshape(-1, 1, order="F"),
     MatrixDifferential(X.T)),
    (D_DIAG, MatrixDifferential(Diag(Vec(X))), lambda v: np.diagflat(v[X].reshape(-1, 1, order="F")),
     MatrixDifferential(X.T)),
    # d tr(Aᵖ) = p tr(Aᵖ⁻¹ dA) for an exponent that is not an integer number (here 3.0, which the oracle
    # can evaluate; tests/derive/test_matrix_functions.py has e^A, ½, −⅓ and a symbolic k)
    (D_TRACE_FUNCTION, ScalarDifferential(Trace(MatPow(S * S.T, sympy.Float(3.0)))),
     lambda v: np.trace(np.linalg.matrix_power(v[S] @ v[S].T, 3)), ScalarDifferential(Trace(S))),
]


@pytest.mark.parametrize(("rule", "node", "by_hand", "_"), CASES, ids=[c[0].key for c in CASES])
def test_differential_rule_applies(rule, node, by_hand, _) -> None:
    out = rule(node, WRT)
    assert out != node
    fd = (by_hand(_shifted(EPS)) - by_hand(_shifted(-EPS))) / (2 * EPS)
    np.testing.assert_allclose(directional(out), fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("rule", "_", "__", "other"), CASES, ids=[c[0].key for c in CASES])
def test_differential_rule_returns_other_input_unchanged(rule, _, __, other) -> None:
    assert rule(other, WRT) is other
    assert rule(other.args[0], WRT) is other.args[0]        # not a differential at all


def test_constant_multiple_needs_a_constant() -> None:
    node = MatrixDifferential(MatMul(a, X))
    assert D_CONSTANT_MULTIPLE(node, frozenset({X})) == MatMul(a, MatrixDifferential(X))
    assert D_CONSTANT_MULTIPLE(node, frozenset({X, a})) is node       # a varies: the product rule's


def test_a_constant_factor_has_no_differential() -> None:
    assert D_PRODUCT(MatrixDifferential(X * W), frozenset({X})) == MatMul(MatrixDifferential(X), W)


def test_every_differential_rule_has_a_case() -> None:
    assert {c[0] for c in CASES} | {D_EXPM} == set(RULES_OF_DIFFERENTIALS)   # D_EXPM only refuses


def test_the_matrix_exponential_outside_a_trace_is_refused() -> None:
    from derive.differential import UnsupportedExpressionError
    from derive.matrix_functions import expm

    with pytest.raises(UnsupportedExpressionError, match="outside tr"):
        D_EXPM(MatrixDifferential(expm(S)), WRT)
    assert D_TRACE_FUNCTION(ScalarDifferential(Trace(MatPow(S, a))), WRT) == ScalarDifferential(
        Trace(MatPow(S, a)))   # a varies: d(Sᵃ) has a log S da term, not this rule's
    assert set(DIFFERENTIAL_RULES.values()) <= set(RULES_OF_DIFFERENTIALS)


# --- the records ---------------------------------------------------------------------------------

@pytest.mark.parametrize("key", sorted(RULES))
def test_every_rule_has_a_name_in_every_language(key: str) -> None:
    for lang in LANGUAGES:
        assert RULES[key].name(lang).strip()
        assert get_locale(lang).rule(key) == RULES[key].name(lang)


def test_a_record_without_a_chinese_name_fails_where_it_is_made() -> None:
    with pytest.raises(ValueError, match="has no name in zh"):
        Rule("d_new", sympy.Symbol("x"), {"en": "new rule"})
    with pytest.raises(ValueError, match="languages that do not exist: fr"):
        Rule("d_new", sympy.Symbol("x"), {"en": "new", "zh": "新", "fr": "nouveau"})
    with pytest.raises(TypeError, match="SymPy object"):
        Rule("d_new", r"\mathrm{d}x", {"en": "new", "zh": "新"})


def test_two_rules_with_one_key_fail_where_the_table_is_made() -> None:
    with pytest.raises(ValueError, match="two rules have the key 'd_sum'"):
        rule_table([D_SUM, Rule("d_sum", sympy.Symbol("x"), {"en": "x", "zh": "x"})])


def test_a_step_names_a_known_rule() -> None:
    with pytest.raises(KeyError, match="unknown rule 'd_produkt'"):
        Step("d_produkt", derive.steps.F, derive.steps.F)


def test_the_modules_that_make_steps_name_rules_by_record() -> None:
    # keys are checked at import: the engine, backprop and networks import the records they name,
    # and no step is made from a string literal
    import ast
    import inspect

    for name in ("derive.engine", "derive.backprop", "derive.networks"):
        tree = ast.parse(inspect.getsource(importlib.import_module(name)))
        literal = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                   and getattr(node.func, "id", None) == "Step"
                   and node.args and isinstance(node.args[0], ast.Constant)]
        assert not literal, f"{name} makes a Step from a string literal"


def test_a_rule_that_is_a_step_is_not_a_rewrite() -> None:
    with pytest.raises(TypeError, match="not a rewrite"):
        RULES["chain"](sympy.Symbol("x"))


# --- every law holds -------------------------------------------------------------------------------

LAW_VALUES = {"p": 3, "q": 2, "lambda": 1.7, "c": -0.6, "t": 0.9, "a": 0.4, "b": -1.3}
# laws with a generic function (φ, g), a definition or a notation there is no number for
NOT_NUMERIC = {"differential", "substitute", "chain", "d_elementwise", "d_scalar_function", "d_entry",
               "read_off", "sum_over_uses", "rows_sum_to_one", "cols_sum_to_zero", "rows_sum_to_zero",
               "read_off_jacobian", "read_off_hessian", "hvp_direction",
               # structured variables: a notation (Sᵀ = S holds of a symmetric S only) and read-offs
               "symmetry", "symmetric_variable", "diagonal_variable", "read_off_scalar",
               # e^A: the oracle has no matrix exponential (test_matrix_functions.py checks these numerically)
               "d_trace_function", "d_expm"}


def _concrete(e, size: int):
    """A law with its generic n×n matrices of size ``size``, its exponents and scalars numbers, Σ
    written out and ‖A‖²_F as the sum of squares, to be evaluated by the oracle."""
    e = e.subs({s: size for s in e.atoms(sympy.Symbol) if s.name == "n"})
    e = e.xreplace({s: sympy.Integer(v) if isinstance(v, int) else sympy.Float(v)
                    for s in e.atoms(sympy.Symbol) if (v := LAW_VALUES.get(s.name)) is not None})
    for s in list(e.atoms(Summation)):
        index, (lower, upper) = s.index, s.limits
        e = e.xreplace({s: MatAdd(*[s.term.xreplace({index: j}) for j in range(int(lower), int(upper) + 1)])})
    return e


def _sides(law) -> list[tuple]:
    return [(x.lhs, x.rhs) for x in (law.args if isinstance(law, Laws) else (law,))]


@pytest.mark.parametrize("key", sorted(set(RULES) - NOT_NUMERIC))
def test_the_law_holds(key: str) -> None:
    # random square matrices (the laws' matrices are n×n: traces, inverses), well conditioned
    size, rng = 4, np.random.default_rng(3)
    for lhs, rhs in _sides(RULES[key].law):
        lhs, rhs = _concrete(lhs, size), _concrete(rhs, size)
        mats = sorted(lhs.atoms(MatrixSymbol) | rhs.atoms(MatrixSymbol), key=lambda s: s.name)
        values = {s: rng.standard_normal(s.shape) + size * np.eye(*s.shape) for s in mats}
        directions = {s: rng.standard_normal(s.shape) for s in mats}
        sides = []
        for side in (lhs, rhs):
            # ‖A‖²_F by hand: the sum of the squares of the entries
            frob = {f: sympy.Float(float(np.sum(_evaluate(f.arg, values) ** 2))) for f in side.atoms(FrobeniusSq)}
            sides.append(directional(side.xreplace(frob), values, directions))
        np.testing.assert_allclose(sides[0], sides[1], rtol=1e-6, atol=1e-7)


def test_the_laws_left_out_are_the_ones_without_numbers() -> None:
    assert set(RULES) >= NOT_NUMERIC

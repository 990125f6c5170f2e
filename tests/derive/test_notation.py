"""What ``print`` shows: derive's results in tracegrad's notation, never SymPy's internals.

``print(derive.gradient(...))`` reads 2Xᵀ[((Ypred − Y)W2ᵀ) ⊙ σ(h) ⊙ (𝟏 − σ(h))], while the
result stays the SymPy expression it is (equal, same hash, same numbers); elementwise functions
print as σ(h) even inside plain SymPy output; results are tidy (sum(X.^2) gives 2X; softmax(Z)
where it arises); modules written by numeric.export / tracegrad codegen document themselves
in the same notation.  Every changed result is checked against central finite differences.
"""
from __future__ import annotations

import importlib.util
import pickle

import numpy as np
import pytest
import sympy
from sympy import MatMul, MatrixSymbol, Symbol

import derive
from derive.elementwise import canonicalize, exp, sigmoid
from derive.networks import mlp
from derive.notation import in_notation, plain
from derive.parse import parse_expression
from derive.render.printer import loss_text, math_latex, math_text
from tests.oracle import check_against_fd, evaluate, random_values

RAW = ("Lambda", "_x", "Dummy", ".T", "*", "MatMul", "Sigmoid", "ElementwiseApplyFunction", "Trace(")

SEED_EXPANDED = {
    "W1": "2Xᵀ[((σ(XW1 + 𝟏ₙb1)W2 + 𝟏ₙb2 - Y)W2ᵀ) ⊙ σ(XW1 + 𝟏ₙb1) ⊙ (𝟏 - σ(XW1 + 𝟏ₙb1))]",
    "b1": "2𝟏ₙᵀ[((σ(XW1 + 𝟏ₙb1)W2 + 𝟏ₙb2 - Y)W2ᵀ) ⊙ σ(XW1 + 𝟏ₙb1) ⊙ (𝟏 - σ(XW1 + 𝟏ₙb1))]",
    "W2": "2σ(XW1 + 𝟏ₙb1)ᵀ(σ(XW1 + 𝟏ₙb1)W2 + 𝟏ₙb2 - Y)",
    "b2": "2𝟏ₙᵀ(σ(XW1 + 𝟏ₙb1)W2 + 𝟏ₙb2 - Y)",
}
SEED_STAGED = {
    "W1": "2Xᵀ[((Ypred - Y)W2ᵀ) ⊙ σ(h) ⊙ (𝟏 - σ(h))]",
    "b1": "2𝟏ₙᵀ[((Ypred - Y)W2ᵀ) ⊙ σ(h) ⊙ (𝟏 - σ(h))]",
    "W2": "2Hᵀ(Ypred - Y)",
    "b2": "2𝟏ₙᵀ(Ypred - Y)",
}


@pytest.mark.parametrize("name", list(SEED_EXPANDED))
def test_print_of_a_seed_gradient(name: str) -> None:
    net = derive.seed_network()
    G = derive.gradient(net.f, net.symbols[name])
    assert str(G) == repr(G) == SEED_EXPANDED[name]
    assert f"{G}" == SEED_EXPANDED[name]


def test_print_of_the_staged_gradients() -> None:
    net = derive.seed_network()
    bp = derive.backprop(net)
    assert {p.name: str(g) for p, g in bp.gradients(expanded=False).items()} == SEED_STAGED
    assert str(bp.section("h").result) == "2[((Ypred - Y)W2ᵀ) ⊙ σ(h) ⊙ (𝟏 - σ(h))]"
    assert {p.name: str(g) for p, g in bp.gradients().items()} == SEED_EXPANDED


def test_latex_and_pretty_of_a_result() -> None:
    net = derive.seed_network()
    G = derive.backprop(net).gradients(expanded=False)[net.W1]
    assert sympy.latex(G) == math_latex(G) == \
        r"2X^T\left[\left((Y_{pred} - Y)W_2^T\right) \odot \sigma(h) \odot (\mathbf{1} - \sigma(h))\right]"
    assert sympy.pretty(G) == SEED_STAGED["W1"]
    assert G._repr_latex_() == "$\\displaystyle " + math_latex(G) + "$"


def test_a_printed_result_is_the_plain_sympy_expression() -> None:
    net = derive.seed_network(n=4, d=3, m=5, k=2)
    G = derive.gradient(net.f, net.W1)
    P = plain(G)
    assert type(P) is MatMul and type(G) is not MatMul and isinstance(G, MatMul)
    assert G == P and P == G and (G != P) is False and (P != G) is False and hash(G) == hash(P) and {P: 1}[G] == 1
    assert type(G.func(*G.args)) is MatMul and type(2 * G) is MatMul and type(G.T.doit()) is not type(G)
    assert pickle.loads(pickle.dumps(G)) == P
    assert sympy.srepr(G) == sympy.srepr(P)  # srepr stays SymPy's, for rebuilding the expression
    rng = np.random.default_rng(0)
    values = random_values(net.inputs + net.params, rng)
    np.testing.assert_array_equal(evaluate(G, values), evaluate(P, values))
    assert check_against_fd(net.f, net.W1, G, values, rng) < 1e-6
    assert in_notation(G) is G and in_notation(net.W1) is net.W1


def test_elementwise_functions_print_by_name_in_plain_sympy_output() -> None:
    net = derive.seed_network()
    text = str(net.f)
    assert "σ(X*W1 + 1*b1)" in text and "Lambda" not in text and "_x" not in text
    h = net.h_symbol
    assert sympy.latex(sigmoid(h)) == r"\sigma\left(h\right)"
    assert sympy.pretty(sigmoid(h) + h) in ("σ(h) + h", "h + σ(h)")
    Z = MatrixSymbol("Z", 4, 3)
    assert canonicalize(Z.applyfunc(sympy.exp)) == exp(Z) and str(exp(Z)) == "exp(Z)"


def _corpus_results():
    nets = [derive.seed_network(), derive.seed_network(bias="full"),
            mlp([3, 4, 2], activation="tanh", loss="softmax_cross_entropy", weight_decay="lambda"),
            mlp([3, 5, 4, 2], activation=["relu", "softplus"], loss="mse")]
    for net in nets:
        bp = derive.backprop(net)
        yield from (s.result for s in bp.sections)
        yield from bp.gradients().values()
    from tests.derive.test_cookbook import CASES, _setup
    for case in CASES:
        if not case.xfail:
            _, syms, _ = _setup(case)
            yield derive.gradient(case.f(syms), syms[case.wrt])


def test_no_printed_result_shows_sympy_internals() -> None:
    results = list(_corpus_results())
    assert len(results) > 100
    bad = [str(G) for G in results if any(w in str(G) for w in RAW)]
    assert not bad
    assert all(str(G) == math_text(G) for G in results)


# --- tidy results -----------------------------------------------------------------------------

SHAPES = {"X": ("n", "d"), "A": ("n", "d"), "Z": ("n", "k"), "Y": ("n", "k")}


@pytest.mark.parametrize("text, wrt, printed", [
    ("sum(X .^ 2)", "X", "2X"),
    ("sum(X .* A)", "X", "A"),
    ("sum(exp(X))", "X", "exp(X)"),
    ("sum(X .^ 3)", "X", "3X∘²"),
    ("sum(log(exp(Z)*ones(k,1)))", "Z", "softmax(Z)"),
    ("-tr(Y'*(Z - log(exp(Z)*ones(k,1))*ones(1,k)))", "Z", "([(Y𝟏ₖ) ⊙ (exp(Z)𝟏ₖ)∘⁻¹]𝟏ₖᵀ) ⊙ exp(Z) - Y"),
])
def test_tidy_results(text: str, wrt: str, printed: str) -> None:
    f = parse_expression(text, SHAPES)
    X = next(s for s in f.atoms(MatrixSymbol) if s.name == wrt)
    G = derive.gradient(f, X)
    assert str(G) == printed
    rng = np.random.default_rng(1)
    values = random_values(f.atoms(MatrixSymbol), rng)
    assert check_against_fd(f, X, G, values, rng) < 1e-6


def test_hadamard_with_a_ones_matrix_is_the_identity() -> None:
    from derive.simplify import tidy
    n, d = Symbol("n", integer=True, positive=True), Symbol("d", integer=True, positive=True)
    X = MatrixSymbol("X", n, d)
    ones = MatMul(sympy.OneMatrix(n, 1), sympy.OneMatrix(1, d))
    assert tidy(MatMul(2, sympy.HadamardProduct(ones, X))) == MatMul(2, X)
    assert tidy(sympy.HadamardProduct(sympy.OneMatrix(n, d), X)) == X


def test_softmax_where_it_arises() -> None:
    net = mlp([3, 4, 2], activation="tanh", loss="softmax_cross_entropy", n=4)
    bp = derive.backprop(net)
    staged = bp.gradients(expanded=False)
    assert str(staged[net.W2]) == "A1ᵀ(softmax(Z2) - Y)"
    assert str(staged[net.b2]) == "𝟏₄ᵀ(softmax(Z2) - Y)"
    assert str(bp.section("Z2").result) == "softmax(Z2) - Y"
    assert r"\operatorname{softmax}(Z_2) - Y" in math_latex(staged[net.W2])
    assert "softmax(tanh(XW1 + 𝟏₄b1)W2 + 𝟏₄b2) - Y" in str(bp.gradients()[net.W2])
    # the ⊘ form typed in the expression language, and its gradient, against finite differences
    f = parse_expression("tr(A'*(exp(Z) ./ (exp(Z)*ones(k,1)*ones(1,k))))", {"A": ("n", "k"), "Z": ("n", "k")})
    assert math_text(f) == "tr(Aᵀsoftmax(Z))"
    Z = next(s for s in f.atoms(MatrixSymbol) if s.name == "Z")
    G = derive.gradient(f, Z)
    assert "softmax(Z)" in str(G)
    rng = np.random.default_rng(2)
    values = random_values(f.atoms(MatrixSymbol), rng)
    assert check_against_fd(f, Z, G, values, rng) < 1e-6


# --- modules written by numeric.export / tracegrad codegen ------------------------------------

def _docstrings(path) -> list[str]:
    spec = importlib.util.spec_from_file_location("written", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    kernel = next(v for k, v in vars(mod).items() if k in mod.__all__)
    return [mod.__doc__, kernel.__doc__]


def test_export_documents_in_the_callers_notation(tmp_path, monkeypatch) -> None:
    import numeric
    from numeric import registry

    net = derive.seed_network()
    grads = derive.backprop(net).gradients()
    exprs = [net.f] + [grads[p] for p in net.params]
    args = list(net.inputs) + list(net.params)
    for doc in _docstrings(numeric.export(exprs, args, tmp_path / "m.py", describe=loss_text)):
        assert f"d×m: {SEED_EXPANDED['W1']}" in doc
        assert "scalar: ‖Y - (σ(XW1 + 𝟏ₙb1)W2 + 𝟏ₙb2)‖_F²" in doc
        assert not [w for w in RAW if w in doc.split("Returns:")[1]]
    # by default, tracegrad's notation (derive registers it with numeric), never SymPy's repr
    plain_doc = _docstrings(numeric.export(exprs, args, tmp_path / "p.py"))[0]
    assert "scalar: tr((Y - (σ(XW1 + 𝟏ₙb1)W2 + 𝟏ₙb2))ᵀ(Y - (σ(XW1 + 𝟏ₙb1)W2 + 𝟏ₙb2)))" in plain_doc
    assert not [w for w in RAW if w in plain_doc.split("Returns:")[1]]
    monkeypatch.setattr(registry, "_NOTATION", [])    # numeric without derive: str(), SymPy's, with σ
    str_doc = _docstrings(numeric.export(exprs, args, tmp_path / "s.py"))[0]
    assert "σ(X*W1 + 1*b1)" in str_doc and "Lambda" not in str_doc


def test_codegen_module_docstring(tmp_path, capsys) -> None:
    from derive.cli import main

    path = tmp_path / "seed.py"
    assert main(["codegen", "-o", str(path)]) == 0
    module_doc, kernel_doc = _docstrings(path)
    for doc in (module_doc, kernel_doc):
        returns = doc.split("Returns:")[1]
        assert SEED_EXPANDED["W1"] in returns and not [w for w in RAW if w in returns]

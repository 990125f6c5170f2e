"""Staged backprop over any DAG of stages: a variable used by several stages, or by a stage and the
loss, gets the sum of the gradients through its uses (the multivariable chain rule).

Every gradient (parameters, intermediates, the inputs the loss holds) is checked entry by entry
against central finite differences of a forward pass written in plain NumPy: the random DAGs are
interpreted from their spec with NumPy operations, the named networks are written out by hand.
The derived expressions are evaluated by ``tests.oracle.evaluate`` (SymPy with explicit matrices),
the intermediates at the values of the NumPy forward pass.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sympy import MatrixSymbol, Trace

import derive
from derive.render import backprop_html, backprop_latex, backprop_markdown, backprop_text
from tests.oracle import evaluate

Values = dict[str, np.ndarray]


def sig(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def fd_gradient(f: Callable[[Values], float], values: Values, name: str, eps: float = 1e-6) -> np.ndarray:
    """∂f/∂values[name] by central differences, entry by entry."""
    out = np.zeros_like(values[name])
    for idx in np.ndindex(*out.shape):
        plus, minus = dict(values), dict(values)
        plus[name], minus[name] = values[name].copy(), values[name].copy()
        plus[name][idx] += eps
        minus[name][idx] -= eps
        out[idx] = (f(plus) - f(minus)) / (2 * eps)
    return out


def assert_matches_fd(bp, name: str, symbols: dict[str, MatrixSymbol], at: Values,
                      f: Callable[[Values], float], expanded: bool = False) -> None:
    """bp's ∂f/∂name, evaluated at ``at`` (inputs, parameters and, for the staged form, the
    intermediates of the forward pass), equals the finite differences of ``f``."""
    G = bp.gradient(name, expanded=expanded)
    got = evaluate(G, {symbols[k]: v for k, v in at.items() if k in symbols and G.has(symbols[k])})
    want = fd_gradient(f, at, name)
    assert got.shape == want.shape, name
    scale = max(1.0, float(np.max(np.abs(want))))
    assert np.max(np.abs(got - want)) <= 1e-6 * scale, (name, got, want)


# --- random stage DAGs, as data: a spec the tests interpret with NumPy and build with SymPy ------

@dataclass(frozen=True)
class Spec:
    """Inputs and parameters (name → shape), stages (name, op, operand names) in forward order,
    and loss terms: ("diff", v, T) ‖v − T‖², ("sq", v) ½‖v‖², ("inner", P, v) tr(Pᵀv)."""

    inputs: tuple[tuple[str, tuple[int, int]], ...]
    params: tuple[tuple[str, tuple[int, int]], ...]
    stages: tuple[tuple[str, str, tuple[str, ...]], ...]
    loss: tuple[tuple[str, ...], ...]


OPS = ("matmul", "add", "sigmoid", "tanh")


@st.composite
def stage_dags(draw) -> Spec:
    n = draw(st.integers(2, 4))
    d0 = draw(st.sampled_from([k for k in range(2, 6) if k != n]))       # no square matrix anywhere
    inputs: dict[str, tuple[int, int]] = {"X": (n, d0)}
    params: dict[str, tuple[int, int]] = {}
    shapes: dict[str, tuple[int, int]] = dict(inputs)
    stages: list[tuple[str, str, tuple[str, ...]]] = []
    used: set[str] = set()
    for i in range(draw(st.integers(2, 5))):
        name = f"Z{i + 1}"
        values = sorted(shapes, key=lambda v: (v != "X", v), reverse=True)    # the latest first, X last
        pairs = [(a, b) for a in values for b in values if a < b and shapes[a] == shapes[b]]
        op = draw(st.sampled_from(OPS if pairs else [o for o in OPS if o != "add"]))
        if op == "matmul":
            a = draw(st.sampled_from(values))
            cols = shapes[a][1]
            # a weight already used, transposed (tied) or as it is (shared), or a new one
            choices = [(p, "T") for p, s in params.items() if s[1] == cols] + \
                      [(p, "") for p, s in params.items() if s[0] == cols] + [("new", "")]
            p, t = draw(st.sampled_from(choices))
            if p == "new":
                p = f"W{len(params) + 1}"
                params[p] = (cols, draw(st.sampled_from([k for k in range(2, 7) if k not in (cols, n)])))
            stages.append((name, "matmul" + t, (a, p)))
            shapes[name] = (n, params[p][0] if t else params[p][1])
            used.add(a)
        elif op == "add":
            a, b = draw(st.sampled_from(pairs))
            stages.append((name, "add", (a, b)))
            shapes[name] = shapes[a]
            used.update((a, b))
        else:
            a = draw(st.sampled_from(values))
            stages.append((name, op, (a,)))
            shapes[name] = shapes[a]
            used.add(a)
    loss: list[tuple[str, ...]] = []
    for s, _, _ in stages:
        if s not in used:
            inputs[f"T{s[1:]}"] = shapes[s]
            loss.append(("diff", s, f"T{s[1:]}"))
    used_stages = sorted(s for s, _, _ in stages if s in used)
    if used_stages and draw(st.booleans()):           # a value used by the loss and by a later stage
        loss.append(("sq", draw(st.sampled_from(used_stages))))
    if params and draw(st.booleans()):                 # weight decay: a weight in stages and the loss
        loss.append(("sq", draw(st.sampled_from(sorted(params)))))
    if draw(st.booleans()):                            # a parameter only the loss uses
        v = draw(st.sampled_from([s for s, _, _ in stages]))
        params["Q"] = shapes[v]
        loss.append(("inner", "Q", v))
    return Spec(tuple(inputs.items()), tuple(params.items()), tuple(stages), tuple(loss))


def numpy_stages(spec: Spec, v: Values, override: Values | None = None) -> Values:
    """The forward pass in NumPy: ``v`` with every stage's value (``override`` replaces a stage's)."""
    out = dict(v)
    for name, op, args in spec.stages:
        a = [out[x] for x in args]
        if op == "matmul":
            out[name] = a[0] @ a[1]
        elif op == "matmulT":
            out[name] = a[0] @ a[1].T
        elif op == "add":
            out[name] = a[0] + a[1]
        elif op == "sigmoid":
            out[name] = sig(a[0])
        else:
            out[name] = np.tanh(a[0])
        if override and name in override:
            out[name] = override[name]
    return out


def numpy_loss(spec: Spec, v: Values, override: Values | None = None) -> float:
    out = numpy_stages(spec, v, override)
    total = 0.0
    for kind, *args in spec.loss:
        if kind == "diff":
            total += float(np.sum((out[args[0]] - out[args[1]]) ** 2))
        elif kind == "sq":
            total += 0.5 * float(np.sum(out[args[0]] ** 2))
        else:
            total += float(np.sum(out[args[0]] * out[args[1]]))
    return total


SYMPY_OPS: dict[str, Callable] = {
    "matmul": lambda a, b: a * b, "matmulT": lambda a, b: a * b.T, "add": lambda a, b: a + b,
    "sigmoid": derive.sigmoid, "tanh": derive.tanh,
}


def sympy_network(spec: Spec) -> tuple[derive.Network, dict[str, MatrixSymbol]]:
    sym = {name: MatrixSymbol(name, *shape) for name, shape in spec.inputs + spec.params}
    stages = []
    for name, op, args in spec.stages:
        definition = SYMPY_OPS[op](*[sym[x] for x in args])
        sym[name] = MatrixSymbol(name, *definition.shape)
        stages.append((sym[name], definition))
    terms = []
    for kind, *args in spec.loss:
        if kind == "diff":
            terms.append(derive.frobenius_sq(sym[args[0]] - sym[args[1]]))
        elif kind == "sq":
            terms.append(sympy.Rational(1, 2) * derive.frobenius_sq(sym[args[0]]))
        else:
            terms.append(Trace(sym[args[0]].T * sym[args[1]]))
    net = derive.Network(inputs=tuple(sym[x] for x, _ in spec.inputs),
                         params=tuple(sym[p] for p, _ in spec.params), stages=tuple(stages),
                         loss=sympy.Add(*terms), name="random")
    return net, sym


def check_spec(spec: Spec, seed: int = 0) -> None:
    net, sym = sympy_network(spec)
    rng = np.random.default_rng(seed)
    base = {name: rng.standard_normal(shape) for name, shape in spec.inputs + spec.params}
    bp = derive.backprop(net)
    assert [p.name for p in bp.gradients()] == [p for p, _ in spec.params]
    at = numpy_stages(spec, base)
    for name, _ in spec.params + spec.inputs:
        if any(s.wrt.name == name for s in bp.sections):
            assert_matches_fd(bp, name, sym, at, lambda v: numpy_loss(spec, v))
    for name, _, _ in spec.stages:            # intermediates: perturb the stage's value
        assert_matches_fd(bp, name, sym, at, lambda v, z=name: numpy_loss(spec, base, {z: v[z]}))


# the example count is fixed: the whole test stays under ~10 s on one core
RANDOM_DAG_EXAMPLES = 80


@settings(max_examples=RANDOM_DAG_EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(stage_dags())
def test_random_stage_dags_meet_finite_differences(spec: Spec) -> None:
    check_spec(spec)


def features(spec: Spec) -> set[str]:
    """The kinds of fan-out in ``spec``."""
    uses: dict[str, int] = {}
    for _, _, args in spec.stages:
        for a in args:
            uses[a] = uses.get(a, 0) + 1
    in_loss = {a for _, *args in spec.loss for a in args}
    params = {p for p, _ in spec.params}
    stages = {s for s, _, _ in spec.stages}
    out = {f"{len(spec.stages)} stages"}
    out |= {"shared weight" for p in params if uses.get(p, 0) > 1}
    out |= {"tied weight (W and Wᵀ)" for _, op, _ in spec.stages if op == "matmulT"}
    out |= {"skip connection" for _, op, _ in spec.stages if op == "add"}
    out |= {"intermediate used by two stages" for s in stages if uses.get(s, 0) > 1}
    out |= {"intermediate used by the loss and a stage" for s in stages if s in in_loss and s in uses}
    out |= {"weight in a stage and the loss" for p in params if p in in_loss and p in uses}
    out |= {"parameter only in the loss" for p in params if p not in uses}
    return out


def test_random_dag_generator_covers_every_kind_of_fan_out() -> None:
    """Within the example count of the test above, the generator draws every kind of graph."""
    seen: set[str] = set()

    @settings(max_examples=RANDOM_DAG_EXAMPLES, derandomize=True, database=None, deadline=None)
    @given(stage_dags())
    def collect(spec: Spec) -> None:
        seen.update(features(spec))

    collect()
    assert seen >= {"2 stages", "5 stages", "shared weight", "tied weight (W and Wᵀ)", "skip connection",
                    "intermediate used by two stages", "intermediate used by the loss and a stage",
                    "weight in a stage and the loss", "parameter only in the loss"}, seen


# --- the named networks, each against a forward pass written by hand --------------------------

N, D, M, K = 4, 3, 5, 2


def tied_autoencoder() -> tuple[derive.Network, dict[str, MatrixSymbol]]:
    """The issue's example: X 4×3, W 3×5, Xr = σ(XW)Wᵀ, f = ‖X − Xr‖²_F."""
    X, W = MatrixSymbol("X", N, D), MatrixSymbol("W", D, M)
    Z, H, Xr = MatrixSymbol("Z", N, M), MatrixSymbol("H", N, M), MatrixSymbol("Xr", N, D)
    net = derive.Network(inputs=(X,), params=(W,), stages=((Z, X * W), (H, derive.sigmoid(Z)), (Xr, H * W.T)),
                         loss=derive.frobenius_sq(X - Xr), name="tied")
    return net, {s.name: s for s in (X, W, Z, H, Xr)}


def tied_forward(v: Values, over: Values | None = None) -> tuple[float, Values]:
    over = over or {}
    Z = over.get("Z", v["X"] @ v["W"])
    H = over.get("H", sig(Z))
    Xr = over.get("Xr", H @ v["W"].T)
    return float(np.sum((v["X"] - Xr) ** 2)), {"Z": Z, "H": H, "Xr": Xr}


def skip_network() -> tuple[derive.Network, dict[str, MatrixSymbol]]:
    """A skip connection: Z = XW1 feeds A = tanh(Z) and S = A + Z; Ŷ = SW2, f = ‖Y − Ŷ‖²_F."""
    X, Y = MatrixSymbol("X", N, D), MatrixSymbol("Y", N, K)
    W1, W2 = MatrixSymbol("W1", D, M), MatrixSymbol("W2", M, K)
    Z, A, S, P = (MatrixSymbol(name, N, c) for name, c in (("Z", M), ("A", M), ("S", M), ("Ypred", K)))
    net = derive.Network(inputs=(X, Y), params=(W1, W2),
                         stages=((Z, X * W1), (A, derive.tanh(Z)), (S, A + Z), (P, S * W2)),
                         loss=derive.frobenius_sq(Y - P), name="skip")
    return net, {s.name: s for s in (X, Y, W1, W2, Z, A, S, P)}


def skip_forward(v: Values, over: Values | None = None) -> tuple[float, Values]:
    over = over or {}
    Z = over.get("Z", v["X"] @ v["W1"])
    A = over.get("A", np.tanh(Z))
    S = over.get("S", A + Z)
    P = over.get("Ypred", S @ v["W2"])
    return float(np.sum((v["Y"] - P) ** 2)), {"Z": Z, "A": A, "S": S, "Ypred": P}


def rnn_network() -> tuple[derive.Network, dict[str, MatrixSymbol]]:
    """An RNN unrolled over 3 steps: Hₜ = tanh(XₜWx + Hₜ₋₁Wh), an output Oₜ = HₜWy at every step,
    f = Σₜ ‖Yₜ − Oₜ‖²_F: Wx, Wh and Wy are each shared by 3 stages, H1 and H2 feed two stages."""
    Wx, Wh, Wy = MatrixSymbol("Wx", D, M), MatrixSymbol("Wh", M, M), MatrixSymbol("Wy", M, K)
    H0 = MatrixSymbol("H0", N, M)
    Xs = [MatrixSymbol(f"X{t}", N, D) for t in (1, 2, 3)]
    Ys = [MatrixSymbol(f"Y{t}", N, K) for t in (1, 2, 3)]
    stages, loss, H = [], sympy.S.Zero, H0
    for t in range(3):
        Ht, Ot = MatrixSymbol(f"H{t + 1}", N, M), MatrixSymbol(f"O{t + 1}", N, K)
        stages += [(Ht, derive.tanh(Xs[t] * Wx + H * Wh)), (Ot, Ht * Wy)]
        loss += derive.frobenius_sq(Ys[t] - Ot)
        H = Ht
    net = derive.Network(inputs=(H0, *Xs, *Ys), params=(Wx, Wh, Wy), stages=tuple(stages), loss=loss,
                         name="rnn")
    syms = {s.name: s for s in (Wx, Wh, Wy, H0, *Xs, *Ys)}
    syms.update({s.name: s for s, _ in stages})
    return net, syms


def rnn_forward(v: Values, over: Values | None = None) -> tuple[float, Values]:
    over = over or {}
    H, f, out = v["H0"], 0.0, {}
    for t in (1, 2, 3):
        H = over.get(f"H{t}", np.tanh(v[f"X{t}"] @ v["Wx"] + H @ v["Wh"]))
        O = over.get(f"O{t}", H @ v["Wy"])
        f += float(np.sum((v[f"Y{t}"] - O) ** 2))
        out.update({f"H{t}": H, f"O{t}": O})
    return f, out


NAMED = {"tied autoencoder": (tied_autoencoder, tied_forward),
         "skip connection": (skip_network, skip_forward),
         "RNN over 3 steps": (rnn_network, rnn_forward)}


@pytest.mark.parametrize("case", list(NAMED))
def test_named_networks_meet_finite_differences(case: str) -> None:
    build, forward = NAMED[case]
    net, syms = build()
    rng = np.random.default_rng(1)
    base = {s.name: rng.standard_normal(tuple(int(d) for d in s.shape)) for s in net.inputs + net.params}
    _, stage_values = forward(base)
    at = {**base, **stage_values}
    bp = derive.backprop(net)
    assert list(bp.gradients()) == list(net.params)
    for p in net.params:          # in the inputs, and staged (at the forward pass's intermediates)
        assert_matches_fd(bp, p.name, syms, base, lambda v: forward(v)[0], expanded=True)
        assert_matches_fd(bp, p.name, syms, at, lambda v: forward(v)[0])
    for Z, _ in net.stages:
        assert_matches_fd(bp, Z.name, syms, at, lambda v, z=Z.name: forward(base, {z: v[z]})[0])
    for x in net.inputs:
        if x.name in {s.wrt.name for s in bp.sections}:
            assert_matches_fd(bp, x.name, syms, at, lambda v: forward(v)[0])


def test_tied_autoencoder_sums_both_uses_of_w() -> None:
    """The issue's example: ∂f/∂W has a term through Z = XW and one through Xr = HWᵀ."""
    net, s = tied_autoencoder()
    bp = derive.backprop(net)
    assert [d.wrt.name for d in bp.sections] == ["Xr", "H", "Z", "W", "X"]
    w = bp.section("W")
    assert [c.upstream[0] for c in w.contributions] == [s["Z"], s["Xr"]]
    assert [st.rule for st in w.steps] == ["sum_over_uses"]
    assert w.result == sympy.MatAdd(*[c.result for c in w.contributions])
    x = bp.section("X")                       # X: through Z and in the loss itself
    assert [c.upstream for c in x.contributions][1] is None
    assert x.contributions[1].steps[0].rule == "definition"
    # each contribution ends in ∂f/∂W⁽ᵘ⁾ = Gᵤ
    from derive.steps import F, Gradient, Use

    assert [c.steps[-1].lhs for c in w.contributions] == [Gradient(F, Use(s["W"], u)) for u in (s["Z"], s["Xr"])]


def test_single_use_sections_are_unchanged() -> None:
    """Without fan-out a section is a chain of steps from its one downstream gradient, as before."""
    bp = derive.backprop(derive.seed_network())
    assert all(not d.contributions for d in bp.sections)
    assert [d.steps[0].rule for d in bp.sections] == ["definition"] * 2 + ["chain"] * 6


# --- the network is checked when it is built ---------------------------------------------------

X4, W35 = MatrixSymbol("X", N, D), MatrixSymbol("W", D, M)
Z45, H45 = MatrixSymbol("Z", N, M), MatrixSymbol("H", N, M)


def _net(stages, loss=None, inputs=(X4,), params=(W35,)) -> derive.Network:
    return derive.Network(inputs=inputs, params=params, stages=tuple(stages),
                          loss=loss if loss is not None else derive.frobenius_sq(stages[-1][0]))


@pytest.mark.parametrize("stages,loss,message", [
    (((H45, derive.tanh(Z45)), (Z45, X4 * W35)), None,
     r"^stage H \(stage 1\) uses Z, which is defined later \(stage 2\): list the stages in forward order$"),
    (((Z45, derive.tanh(H45)), (H45, derive.sigmoid(Z45) + X4 * W35)), None,
     r"^stage Z: the stages form a cycle: Z → H → Z \(each uses the next\)$"),
    (((Z45, derive.tanh(Z45 + X4 * W35)),), None, r"^stage Z: the stages form a cycle: Z → Z"),
    (((MatrixSymbol("X", N, D), X4 * W35 * W35.T),), None, r"^stage X \(stage 1 of 1\) redefines the input X$"),
    (((MatrixSymbol("W", N, M), X4 * W35),), None, r"^stage W \(stage 1 of 1\) redefines the parameter W$"),
    (((MatrixSymbol("Z", N, D), X4 * W35),), None,
     r"^stage Z \(stage 1 of 1\): Z is 4×3 but its definition X\*W is 4×5$"),
    (((Z45, X4 * W35), (Z45, derive.tanh(X4 * W35))), None,
     r"^stage Z \(stage 2 of 2\): Z is already defined by stage 1$"),
    (((Z45, X4 * W35), (H45, derive.tanh(Z45))), derive.frobenius_sq(Z45),
     r"^stage H is used by no later stage and not by the loss$"),
    (((Z45, X4 * MatrixSymbol("V", D, M)),), None,
     r"^stage Z uses V, which is not an input, a parameter or a stage; declare it in inputs"),
    (((Z45, MatrixSymbol("X", N, 2) * MatrixSymbol("W", 2, M)),), None, r"^stage Z uses W as 2×5, but W is 3×5$"),
    (((MatrixSymbol("f", N, M), X4 * W35),), None, r"^stage f \(stage 1 of 1\): f is the loss; give the stage"),
], ids=["order", "cycle", "self-cycle", "redefines input", "redefines parameter", "shape", "duplicate",
        "unused stage", "undeclared symbol", "same name, other shape", "named f"])
def test_malformed_networks_are_refused_naming_the_stage(stages, loss, message) -> None:
    with pytest.raises(ValueError, match=message):
        _net(stages, loss)


def test_unused_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^parameter V is used by no stage and not by the loss$"):
        _net(((Z45, X4 * W35),), params=(W35, MatrixSymbol("V", D, M)))


def test_stages_that_are_not_pairs_are_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"^Network stages must be a tuple of \(MatrixSymbol, definition\) pairs$"):
        derive.Network(inputs=(X4,), params=(W35,), stages=((X4 * W35,),), loss=derive.frobenius_sq(X4))


# --- a parameter only the loss uses -------------------------------------------------------------

@pytest.mark.parametrize("term", ["weight decay", "inner product"])
def test_parameter_used_only_in_the_loss(term: str) -> None:
    """V appears in no stage, only in the loss: it gets its section and its gradient like W."""
    Y, V = MatrixSymbol("Y", N, M), MatrixSymbol("V", N, M)
    lam = sympy.Rational(3, 10)
    extra = lam * derive.frobenius_sq(V) if term == "weight decay" else Trace(V.T * H45)
    net = derive.Network(inputs=(X4, Y), params=(W35, V), stages=((Z45, X4 * W35), (H45, derive.sigmoid(Z45))),
                         loss=derive.frobenius_sq(Y - H45) + extra)

    def forward(v: Values, over: Values | None = None) -> float:
        H = (over or {}).get("H", sig(v["X"] @ v["W"]))
        f = float(np.sum((v["Y"] - H) ** 2))
        return f + (0.3 * float(np.sum(v["V"] ** 2)) if term == "weight decay" else float(np.sum(v["V"] * H)))

    rng = np.random.default_rng(2)
    base = {s.name: rng.standard_normal(tuple(s.shape)) for s in net.inputs + net.params}
    syms = {s.name: s for s in (X4, Y, V, W35, Z45, H45)}
    at = {**base, "Z": base["X"] @ base["W"], "H": sig(base["X"] @ base["W"])}
    bp = derive.backprop(net)
    assert list(bp.gradients()) == [W35, V]
    for name in ("W", "V"):
        assert_matches_fd(bp, name, syms, base, forward, expanded=True)
    assert_matches_fd(bp, "H", syms, at, lambda v: forward(base, {"H": v["H"]}))
    if term == "weight decay":
        assert bp.gradients()[V] == 2 * lam * V


def test_mlp_weight_decay_sums_the_stage_and_the_loss() -> None:
    """mlp(weight_decay=λ): each W is used by its layer and by λ‖W‖²: two contributions."""
    net = derive.networks.mlp([3, 5, 2], weight_decay="lambda", n=4)
    bp = derive.backprop(net)
    for W in (net.W1, net.W2):
        uses = [c.upstream[0] if c.upstream else None for c in bp.section(W.name).contributions]
        assert uses == [net.uses(W)[0], None]


# --- the document shows each use and the sum ----------------------------------------------------

RULE = {"en": "multivariable chain rule: sum over every use", "zh": "多元链式法则：对每一处使用求和"}
SUM = {"en": "Summing over the uses:", "zh": "对所有使用求和，"}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_tied_autoencoder_document_shows_both_uses_and_the_sum(lang: str) -> None:
    bp = derive.backprop(tied_autoencoder()[0])
    through = {"en": "Through", "zh": "经由"}[lang]
    txt = backprop_text(bp, lang)
    section_w = txt[txt.index("∂f/∂W\n"):txt.index("∂f/∂X\n")]
    assert _in_order(section_w, [f"{through} Z", "⇒ ∂f/∂W^(Z) = 2Xᵀ[", f"{through} Xr", "⇒ ∂f/∂W^(Xr) = 2(Xr - X)ᵀH",
                                 SUM[lang], "⇒ ∂f/∂W = 2Xᵀ[", "+ 2(Xr - X)ᵀH"])
    # the sum's rule beside it (on its first line: the sum is broken to fit 100 columns)
    assert f"[{RULE[lang]}]" in section_w[section_w.index(SUM[lang]):]
    tex_w = r"\frac{\partial f}{\partial W^{(Z)}}", r"\frac{\partial f}{\partial W^{(Xr)}}"
    for doc in (backprop_markdown(bp, lang), backprop_latex(bp, lang)):
        assert _in_order(doc, [f"{through} $Z$", rf"\Rightarrow {tex_w[0]} = 2X^T", f"{through} $Xr$",
                               rf"\Rightarrow {tex_w[1]} = 2(Xr - X)^TH",
                               SUM[lang], r"\Rightarrow \frac{\partial f}{\partial W} &= 2X^T", RULE[lang]]), doc[:3000]
        assert tex_w[0] + " + " + tex_w[1] in doc        # the plan: ∂f/∂W = ∂f/∂W⁽ᶻ⁾ + ∂f/∂W⁽ˣʳ⁾
    html = backprop_html(bp, lang, audit=False)
    copy = "<msup><mi>W</mi><mrow><mo stretchy=\"false\">(</mo><mi>Z</mi><mo stretchy=\"false\">)</mo></mrow></msup>"
    assert _in_order(html, ['<div class="use">', copy, '<div class="use">', SUM[lang],
                            f'<td class="rule">{RULE[lang]}</td>'])
    assert html.count('<div class="use">') == 4      # W: through Z and Xr; X: through Z and f


def _in_order(text: str, parts: list[str]) -> bool:
    at = 0
    for p in parts:
        at = text.find(p, at)
        if at < 0:
            return False
        at += len(p)
    return True


def test_a_section_on_its_own_shows_its_uses() -> None:
    """A fan-out section rendered alone (a notebook cell) holds each use's steps, then the sum."""
    w = derive.backprop(tied_autoencoder()[0]).section("W")
    tex = w.to_latex()
    assert _in_order(tex, [r"\mathrm{d}(XW)", r"W^{(Z)}}", r"\mathrm{d}(HW^T)", r"W^{(Xr)}}", RULE["en"]])
    assert _in_order(w.to_text("zh"), ["经由 Z", "∂f/∂W^(Z) =", "经由 Xr", "∂f/∂W^(Xr) =", RULE["zh"]])
    assert _in_order(w.to_markdown(), ["Through $Z$", "Through $Xr$", RULE["en"]])


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_tied_autoencoder_document_compiles(lang: str, tmp_path) -> None:
    from derive.render import latex_engine
    from tests.derive.render.conftest import compile_tex

    compile_tex(backprop_latex(derive.backprop(tied_autoencoder()[0]), lang), latex_engine(lang), tmp_path)

"""The audit of the seed document: each verdict pinned, each number independent of SymPy."""
from __future__ import annotations

import numpy as np
import pytest

from tests import hand_audit as reference
from tests.hand_audit import Verdict
from derive.render.locale import PROSE
from tests.oracle import fd_gradient, rel_err, seed_loss

EXPECTED = [
    ("∂f/∂Y = 2(Y − Ypred)", "as written", True, "correct"),
    ("∂f/∂Ypred = 2(Ypred − Y)", "as written (f as a function of Ypred)", True, "correct"),
    ("∂f/∂W2 = 2 h_sigmoidᵀ(Ypred − Y)", "as written", True, "correct"),
    ("∂f/∂b2 = 2(Ypred − Y)", "as written", True, "correct for bias n×k only"),
    ("∂f/∂b2 = 2·1ᵀ(Ypred − Y)", "corrected: summed over the batch", True, "correct for row bias only"),
    ("∂f/∂h_sigmoid = 2(Ypred − Y)W2ᵀ", "as written (f as a function of h_sigmoid)", True, "correct"),
    ("∂f/∂h = 2(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)", "⊙ looser than product: [2(Ypred − Y)W2ᵀ] ⊙ σ'(h)", True, "correct"),
    ("∂f/∂h = 2(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)", "⊙ tighter than product: 2(Ypred − Y)[W2ᵀ ⊙ σ'(h)]", False,
     "shapes do not conform"),
    ("∂f/∂W1 = 2Xᵀ(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)", "⊙ looser than product: [2Xᵀ(Ypred − Y)W2ᵀ] ⊙ σ'(h)", False,
     "shapes do not conform"),
    ("∂f/∂W1 = 2Xᵀ(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)", "⊙ tighter than product: 2Xᵀ(Ypred − Y)[W2ᵀ ⊙ σ'(h)]", False,
     "shapes do not conform"),
    ("∂f/∂W1 = 2Xᵀ(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)",
     "as the derivation's line before it: 2Xᵀ[((Ypred − Y)W2ᵀ) ⊙ σ'(h)]", True, "correct"),
    ("∂f/∂b1 = 2(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)", "⊙ looser than product: [2(Ypred − Y)W2ᵀ] ⊙ σ'(h)", True,
     "correct for bias n×m only"),
    ("∂f/∂b1 = 2(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)", "⊙ tighter than product: 2(Ypred − Y)[W2ᵀ ⊙ σ'(h)]", False,
     "shapes do not conform"),
    ("∂f/∂b1 = 2·1ᵀ[(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)]", "corrected: summed over the batch", True,
     "correct for row bias only"),
]


VERDICTS = {"correct": Verdict.CORRECT, "correct for bias n×k only": Verdict.FULL_BIAS_ONLY,
            "correct for bias n×m only": Verdict.FULL_BIAS_ONLY, "correct for row bias only": Verdict.ROW_BIAS_ONLY,
            "shapes do not conform": Verdict.NOT_CONFORMING}


@pytest.fixture(scope="module")
def rows():
    return reference.audit(seed=0, dims=(4, 3, 5, 2), compiled=True)


def test_each_verdict(rows):
    _, cells = reference.audit_table(rows[:len(EXPECTED)])
    got = [(c[0], c[1], r.conforms, c[-1]) for r, c in zip(rows, cells)]
    assert got == EXPECTED
    assert [r.verdict for r in rows[:len(EXPECTED)]] == [VERDICTS[e[3]] for e in EXPECTED]
    for r in rows[:len(EXPECTED)]:
        if r.conforms:
            assert r.max_error is not None and r.max_error < 1e-6
        else:
            assert r.max_error is None


def test_compiled_kernel_rows(rows):
    kernel_rows = rows[len(EXPECTED):]
    assert len(kernel_rows) == 8
    assert all(r.verdict is Verdict.CORRECT and r.max_error < 1e-6 for r in kernel_rows)
    assert [r.reading.key for r in kernel_rows] == ["compiled_row"] * 4 + ["compiled_full"] * 4


def test_reference_loss_and_fd_against_helpers():
    # the reference's NumPy f and finite differences agree with an independent transcription
    rng = np.random.default_rng(3)
    v = reference.random_values(rng, (4, 3, 5, 2), "row")
    arrays = [v[s] for s in ("X", "Y", "W1", "b1", "W2", "b2")]
    assert abs(reference.loss(v) - seed_loss(*arrays)) < 1e-12
    g = reference.fd_gradient(reference.loss, v, "W1")
    assert rel_err(g, fd_gradient(seed_loss, arrays, 2)) < 1e-8


def test_other_seed_changes_no_verdict():
    rows = reference.audit(seed=7, dims=(6, 2, 3, 4))
    assert [r.verdict for r in rows] == [VERDICTS[e[3]] for e in EXPECTED]


def test_only_the_seed_network_has_a_write_up():
    from derive.networks import mlp, seed_network

    assert len(reference.audit(seed_network())) == len(EXPECTED)
    assert reference.audit(mlp([3, 4, 2])) == []


@pytest.mark.parametrize("errors, verdict", [
    ({"row": 1e-9, "full": 1e-9}, Verdict.CORRECT),
    ({"row": 0.5, "full": 1e-9}, Verdict.FULL_BIAS_ONLY),
    ({"row": None, "full": 1e-9}, Verdict.FULL_BIAS_ONLY),     # the row reading's shape is not ∂f/∂b's
    ({"row": 1e-9, "full": 0.5}, Verdict.ROW_BIAS_ONLY),
    ({"row": 0.5, "full": 0.5}, Verdict.WRONG),
    ({"row": 1e-5, "full": 0.5}, Verdict.INCONCLUSIVE),       # between the tolerances
    ({"row": 1e-9}, Verdict.CORRECT),                          # a compiled kernel's row: one bias reading
    ({"full": 0.5}, Verdict.WRONG),
])
def test_verdict_rules(errors, verdict):
    assert reference._verdict(True, errors) is verdict
    assert reference._verdict(False, errors) is Verdict.NOT_CONFORMING


def test_format_audit_languages(rows):
    en = reference.format_audit(rows)
    zh = reference.format_audit(rows, lang="zh")
    assert en.count("\n") == zh.count("\n") == len(rows) + 1
    assert "shapes do not conform" in en and "correct for bias n×m only" in en
    assert "形状不相容" in zh and "仅当偏置为 n×m 时正确" in zh and "正确" in zh
    with pytest.raises(ValueError):
        reference.format_audit(rows, lang="fr")


def test_every_word_is_in_the_locale_table(rows):
    # the Chinese cells have no English word left: only the formulas, shapes and numbers are shared
    head, cells = reference.audit_table(rows, "zh")
    en_head, en_cells = reference.audit_table(rows, "en")
    assert not set(head) & set(en_head)
    for zh_row, en_row in zip(cells, en_cells):
        assert zh_row[0] == en_row[0] and zh_row[2] == en_row[2] and zh_row[4] == en_row[4]
        assert zh_row[1] != en_row[1] and zh_row[3] != en_row[3] and zh_row[5] != en_row[5]


def test_missing_words_are_found_at_import(monkeypatch):
    monkeypatch.delitem(PROSE["zh"], "audit_reading_summed")
    with pytest.raises(RuntimeError, match="zh:audit_reading_summed"):
        reference._check_words()

"""numeric.export: a standalone module, imported where SymPy cannot be imported."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
from sympy import MatrixSymbol, OneMatrix, Trace
from sympy.matrices.expressions.hadamard import HadamardProduct

import numeric
from derive.elementwise import sigmoid
from tests.oracle import d, k, m, n, np_sigmoid

X, Y = MatrixSymbol("X", n, d), MatrixSymbol("Y", n, k)
W1, b1 = MatrixSymbol("W1", d, m), MatrixSymbol("b1", 1, m)
W2 = MatrixSymbol("W2", m, k)


def test_exported_module_runs_without_sympy(tmp_path, seed_values):
    S = sigmoid(X * W1 + OneMatrix(n, 1) * b1)
    R = S * W2 - Y
    exprs = [Trace(R.T * R), 2 * X.T * HadamardProduct(R * W2.T, S, OneMatrix(n, m) - S)]
    args = [X, Y, W1, b1, W2]
    path = numeric.export(exprs, args, tmp_path / "seedmod.py", name="seed")
    text = path.read_text()
    assert "sympy" not in text.split('"""')[-1]      # no import of sympy in the code
    arrays = [seed_values[name] for name in ("X", "Y", "W1", "b1", "W2")]
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["sympy"] = None          # any import of sympy now fails
        sys.path.insert(0, {str(tmp_path)!r})
        import numpy as np
        import seedmod
        arrays = [np.array(a) for a in json.loads(sys.stdin.read())]
        f, g = seedmod.seed(*arrays)
        try:
            seedmod.seed(arrays[0], np.ones((5, 2)), *arrays[2:])
        except ValueError as e:
            err = str(e)
        print(json.dumps([float(f), g.tolist(), err, seedmod.seed.__doc__ is not None]))
    """)
    proc = subprocess.run([sys.executable, "-c", script], input=json.dumps([a.tolist() for a in arrays]),
                          capture_output=True, text=True, check=True)
    f, g, err, has_doc = json.loads(proc.stdout)
    # oracle: the same formulas typed by hand
    Xv, Yv, W1v, b1v, W2v = arrays
    Sv = np_sigmoid(Xv @ W1v + b1v)
    Rv = Sv @ W2v - Yv
    np.testing.assert_allclose(f, np.sum(Rv * Rv), rtol=1e-12)
    np.testing.assert_allclose(g, 2 * Xv.T @ ((Rv @ W2v.T) * Sv * (1 - Sv)), rtol=1e-10)
    assert err == "argument Y: expected shape (n, k) = (4, 2) from X, got (5, 2)"
    assert has_doc
    # and the compiled kernel agrees with the exported one to the last bit
    fk, gk = numeric.compile(exprs, args)(*arrays)
    assert float(fk) == f and np.array_equal(gk, np.array(g))

"""The order of a chain of matrix products, for the libraries without ``numpy.linalg.multi_dot``
(CuPy, dask.array): library-neutral (``@`` and ``.shape`` only), its source copied into their
generated modules by :func:`numeric.array_backends._checks_source`.

>>> import numpy
>>> A, B, C = numpy.ones((10, 2)), numpy.ones((2, 30)), numpy.ones((30, 3))
>>> _multi_dot([A, B, C]).shape
(10, 3)
"""


def _multi_dot(arrays):
    """A₁A₂⋯Aₖ multiplied in the order of fewest scalar multiplications (from the shapes)."""
    dims = [arrays[0].shape[0]] + [a.shape[1] for a in arrays]
    k = len(arrays)
    cost = [[0] * k for _ in range(k)]
    split = [[0] * k for _ in range(k)]
    for length in range(1, k):
        for i in range(k - length):
            j = i + length
            cost[i][j] = float("inf")
            for s in range(i, j):
                c = cost[i][s] + cost[s + 1][j] + dims[i] * dims[s + 1] * dims[j + 1]
                if c < cost[i][j]:
                    cost[i][j], split[i][j] = c, s

    def product(i, j):
        return arrays[i] if i == j else product(i, split[i][j]) @ product(split[i][j] + 1, j)

    return product(0, k - 1)

"""The examples of the web app's editor (``GET /api/examples``): four programs of the gallery
(docs/gallery/*.tg, the same text: a test compares them) and a Hessian; each titled in English
(``title``) and Chinese (``title_zh``).

>>> [e["id"] for e in EXAMPLES]
['seed', 'softmax_regression', 'batchnorm', 'attention', 'logistic_hessian']
"""
from __future__ import annotations

from typing import Any

__all__ = ["EXAMPLES"]

EXAMPLES: list[dict[str, Any]] = [
    {"id": "seed", "title": "The seed network (two layers, sigmoid, squared error)", "title_zh": "种子网络（两层、sigmoid、平方误差）", "kind": "gradient",
     "program": "# The seed write-up's two-layer network: h = XW1 + b1, H = σ(h), Ŷ = HW2 + b2, f = ‖Y − Ŷ‖²_F\nX: n×d; Y: n×k\nparam W1: d×m; param b1: 1×m; param W2: m×k; param b2: 1×k\nh = X*W1 + b1\nH = sigmoid(h)\nYpred = H*W2 + b2\nf = norm2(Y - Ypred)^2\n"},
    {"id": "softmax_regression", "title": "Softmax regression (cross-entropy)", "title_zh": "Softmax 回归（交叉熵）", "kind": "gradient",
     "program": '# Softmax regression: logits Z = XW + b, cross-entropy against one-hot labels Y\nX: n×d; Y: n×k\nparam W: d×k; param b: 1×k\nZ = X*W + b\nf = cross_entropy(Z, Y)\n'},
    {"id": "batchnorm", "title": "Batch normalisation", "title_zh": "批归一化", "kind": "gradient",
     "program": '# Batch normalisation between an affine layer and a ReLU, statistics over the batch (per column)\nX: n×d; Y: n×k\nparam W1: d×m; param gamma: 1×m; param beta: 1×m; param W2: m×k\nZ = X*W1\nB = batchnorm(Z, gamma, beta)\nH = relu(B)\nYpred = H*W2\nf = norm2(Y - Ypred)^2\n'},
    {"id": "attention", "title": "Single-head self-attention", "title_zh": "单头自注意力", "kind": "gradient",
     "program": '# Single-head self-attention: A = softmax(QKᵀ/√e)V with Q = XWq, K = XWk, V = XWv\nX: n×d; Y: n×v\nparam Wq: d×e; param Wk: d×e; param Wv: d×v\nQ = X*Wq\nK = X*Wk\nV = X*Wv\nA = attention(Q, K, V)\nf = norm2(Y - A)^2\n'},
    {"id": "logistic_hessian", "title": "The Hessian of logistic regression's loss", "title_zh": "逻辑回归损失的 Hessian 矩阵", "kind": "hessian",
     "expression": "sum(softplus(X*w)) - y'*X*w", "shapes": {"X": ["n", "d"], "w": ["d", 1], "y": ["n", 1]},
     "wrt": ["w"], "order": 2},
]

"""The words around the mathematics, in English and Chinese.

Every rule key of :data:`derive.steps.RULES` has a name in each language, and so has every
piece of prose the renderers write.  The Chinese follows the seed document's wording
(推导, 得到, 由, 方程两边取微分得到, 综上所述).  Prose entries are ``str.format`` templates;
their fields are filled with already-rendered mathematics.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from types import MappingProxyType
from collections.abc import Callable, Mapping

__all__ = ["LANGUAGES", "PROSE", "RULE_NAMES", "Locale", "get_locale"]

LANGUAGES = ("en", "zh")

RULE_NAMES: dict[str, dict[str, str]] = {
    "en": {
        "definition": "definition",
        "scalar_as_trace": "a scalar is its own trace",
        "differential": "take the differential",
        "substitute": "substitute",
        "chain": "chain rule",
        "d_sum": "differential of a sum",
        "d_product": "product rule",
        "d_hadamard": "product rule for the Hadamard product",
        "d_transpose": "differential of a transpose",
        "d_trace": "differential of a trace",
        "d_elementwise": "differential of an elementwise function",
        "d_inverse": "differential of an inverse",
        "d_determinant": "differential of a determinant",
        "d_matpow": "differential of a matrix power",
        "d_hadamard_power": "differential of a Hadamard power",
        "d_scalar_sum": "differential of a sum",
        "d_scalar_product": "product rule",
        "d_scalar_function": "differential of a scalar function",
        "d_entry": "entry of a 1-by-1 matrix",
        "trace_linearity": "linearity of the trace",
        "distribute": "distribute",
        "transpose_product": "transpose of a product",
        "trace_transpose": "trace of a transpose",
        "trace_cyclic": "cyclic property of the trace",
        "trace_hadamard": "trace and Hadamard product",
        "collect": "collect terms",
        "read_off": "read off the gradient",
        "rows_sum_to_one": "each row sums to 1",
        "sum_over_uses": "multivariable chain rule: sum over every use",
    },
    "zh": {
        "definition": "定义",
        "scalar_as_trace": "标量等于自身的迹",
        "differential": "两边取微分",
        "substitute": "代入",
        "chain": "链式法则",
        "d_sum": "和的微分",
        "d_product": "乘积的微分",
        "d_hadamard": "逐元素乘积的微分",
        "d_transpose": "转置的微分",
        "d_trace": "迹的微分",
        "d_elementwise": "逐元素函数的微分",
        "d_inverse": "逆矩阵的微分",
        "d_determinant": "行列式的微分",
        "d_matpow": "矩阵幂的微分",
        "d_hadamard_power": "逐元素幂的微分",
        "d_scalar_sum": "和的微分",
        "d_scalar_product": "乘积的微分",
        "d_scalar_function": "标量函数的微分",
        "d_entry": "1×1 矩阵的元素",
        "trace_linearity": "迹的线性",
        "distribute": "分配律",
        "transpose_product": "乘积的转置",
        "trace_transpose": "转置的迹不变",
        "trace_cyclic": "迹的循环性质",
        "trace_hadamard": "迹与逐元素乘积",
        "collect": "合并同类项",
        "read_off": "读出导数",
        "rows_sum_to_one": "每行之和为 1",
        "sum_over_uses": "多元链式法则：对每一处使用求和",
    },
}

# Templates: {grad} a gradient, {eq} an equation, {params} a list of symbols, {one} a ones matrix,
# {n} its length.
PROSE: dict[str, dict[str, str]] = {
    "en": {
        "title": "Derivative expressions",
        "problem": "Problem statement",
        "derivation": "Derivation",
        "derive": "Derive {grad}",
        "obtain": "We obtain {grad}:",
        "from": "From {eq}:",
        "from_where": "From {eq}, where {defs}:",
        "where": "Here {defs}.",
        "list_sep": ", ",
        "so": "So,",
        "differentiate": "Taking the differential of both sides:",
        "summary": "In summary",
        "task": "Find the derivatives of {f} with respect to {params}.",
        "shapes": "Shapes:",
        "ones_column": "{one} is the column of {n} ones.",
        "ones_matrix": "{one} is a matrix of ones.",
        "gradient": "Gradient",
        "shape": "Shape",
        "expression": "Expression",
        "expanded": "In terms of the inputs:",
        "intermediates": "with the intermediates {defs}.",
        "rules": "Rules used",
        "note": "Note: {text}",
        # a variable used more than once: {x} it, {count} its uses, {uses} them, {copy} the copy of
        # {x} that {u} reads, {eq} the sum
        "uses": "{x} is used {count} times ({uses}). Writing {copy} for {x} as used by {u}, "
                "the multivariable chain rule gives {eq}; each term is derived below.",
        "use": "Through {u}:",
        "sum_uses": "Summing over the uses:",
        # the web page
        "contents": "Contents",
        "kind_inputs": "Inputs",
        "kind_params": "Parameters",
        "kind_intermediates": "Intermediates",
        "equation": "Equation",
        "rule": "Rule",
        "law": "Law",
        "audit": "Audit of the seed document's formulas",
        "audit_intro": "Each formula of the seed document, under each reading of its notation, "
                       "evaluated on random data (n, d, m, k = {dims}) under both readings of the "
                       "bias and compared with central finite differences of f.",
        "generated": "Written by tracegrad.",
    },
    "zh": {
        "title": "导数表达式",
        "problem": "问题描述",
        "derivation": "推导过程",
        "derive": "推导 {grad}",
        "obtain": "得到 {grad}，",
        "from": "由 {eq}，",
        "from_where": "由 {eq}，其中 {defs}，",
        "where": "其中 {defs}。",
        "list_sep": "，",
        "so": "于是，",
        "differentiate": "方程两边取微分得到，",
        "summary": "综上所述",
        "task": "给出变量 {params} 导数表达式。",
        "shapes": "各变量的维度：",
        "ones_column": "{one} 为 {n} 维全 1 列向量。",
        "ones_matrix": "{one} 为全 1 矩阵。",
        "gradient": "导数",
        "shape": "维度",
        "expression": "表达式",
        "expanded": "用输入变量表示：",
        "intermediates": "其中中间变量 {defs}。",
        "rules": "所用法则",
        "note": "注：{text}",
        "uses": "{x} 被使用了 {count} 次（{uses}）。记 {copy} 为 {u} 中使用的 {x}，"
                "由多元链式法则，{eq}；下面逐项推导。",
        "use": "经由 {u}：",
        "sum_uses": "对所有使用求和，",
        # the web page
        "contents": "目录",
        "kind_inputs": "输入",
        "kind_params": "参数",
        "kind_intermediates": "中间变量",
        "equation": "等式",
        "rule": "法则",
        "law": "公式",
        "audit": "原文公式核查",
        "audit_intro": "原文的每个公式按其记号的每种解读，在随机数据（n, d, m, k = {dims}）上、"
                       "按偏置的两种解读求值，并与 f 的中心差分比较。",
        "generated": "由 tracegrad 生成。",
    },
}


@dataclass(frozen=True)
class Locale:
    """The words of one language.

    >>> get_locale("zh").rule("chain")
    '链式法则'
    >>> get_locale("en").say("derive", grad="∂f/∂W2")
    'Derive ∂f/∂W2'
    """

    lang: str
    rules: Mapping[str, str]
    prose: Mapping[str, str]

    def rule(self, key: str) -> str:
        """The name of a rule; an unknown key is shown as itself."""
        return self.rules.get(key, key.replace("_", " "))

    def say(self, key: str, escape: Callable[[str], str] | None = None, **fields: str) -> str:
        """The prose template ``key`` with its fields filled in.

        ``escape`` is applied to the template's own words, not to the fields (which hold
        rendered mathematics).

        >>> get_locale("en").say("from", escape=str.upper, eq="$x$")
        'FROM $x$:'
        """
        out = []
        for literal, name, _spec, _conv in string.Formatter().parse(self.prose[key]):
            out.append(escape(literal) if escape else literal)
            if name is not None:
                out.append(fields[name])
        return "".join(out)


_LOCALES = {lang: Locale(lang, MappingProxyType(RULE_NAMES[lang]), MappingProxyType(PROSE[lang]))
            for lang in LANGUAGES}


def get_locale(lang: str) -> Locale:
    """The locale for ``lang`` ("en" or "zh").

    >>> get_locale("en").say("summary")
    'In summary'
    >>> get_locale("fr")
    Traceback (most recent call last):
    ...
    ValueError: unknown language 'fr'; choose one of: en, zh
    """
    try:
        return _LOCALES[lang]
    except (KeyError, TypeError):
        raise ValueError(f"unknown language {lang!r}; choose one of: {', '.join(LANGUAGES)}") from None

"""The words around the mathematics, in English and Chinese.

Every rule of :data:`derive.steps.RULES` has a name in each language (in its record, checked at
import), and so has every piece of prose the renderers write.  The Chinese follows the seed document's wording
(推导, 得到, 由, 方程两边取微分得到, 综上所述).  Prose entries are ``str.format`` templates;
their fields are filled with already-rendered mathematics.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from types import MappingProxyType
from collections.abc import Callable, Mapping

from derive.rules import LANGUAGES
from derive.steps import RULES

__all__ = ["AUDIT_PROSE", "CHECK_PROSE", "GRADE_PROSE", "LANGUAGES", "PROSE", "RULE_NAMES", "Locale", "get_locale"]

# The rules' names are in their records (derive.rules.Rule), beside their functions and laws.
RULE_NAMES: dict[str, dict[str, str]] = {lang: {k: r.name(lang) for k, r in RULES.items()} for lang in LANGUAGES}

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
        "expanded_omitted": "The gradients in terms of the inputs alone are omitted: at least one is longer "
                            "than {chars} characters.",
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
        "audit_intro": "The seed write-up graded from its own text (tracegrad grade seed): each result under "
                       "every reading of ⊙ and of the bias, each step of each chain, at random data; its "
                       "results and every line that is not plainly right.",
        "generated": "Written by tracegrad.",
        "abbreviations": "For short, write {defs}.",
        # the checks after the summary (every format)
        "checks": "Checks",
        "grad_check": "Gradient check (random non-square data {dims}, central differences along "
                          "random directions): max relative error {error}, {verdict}.",
        "grad_check_passed": "passed",
        "grad_check_failed": "FAILED",
        "grad_check_own_dims": "the network's own dimensions",
        "grad_check_too_large": "Gradient check skipped: {name} has {entries} entries, more than a check by "
                                "central differences takes ({limit}).",
        "grad_check_assumption": "Gradient check skipped: the derivation assumes “{rule}”, which random "
                                 "data cannot be made to meet.",
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
        "expanded_omitted": "仅用输入变量表示的梯度从略：至少有一个超过 {chars} 个字符。",
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
        "audit_intro": "由原文自身批改（与 tracegrad 的批改命令相同）：每个结果按 ⊙ 与偏置的每种解读、每条推导链的每一步，"
                       "在随机数据上检查；列出其结果及每一条并非显然正确的行。",
        "generated": "由 tracegrad 生成。",
        "abbreviations": "为简洁，记 {defs}。",
        # the checks after the summary (every format)
        "checks": "检验",
        "grad_check": "梯度检验（随机非方阵数据 {dims}，中心差分，沿随机方向）：最大相对误差 {error}，{verdict}。",
        "grad_check_passed": "通过",
        "grad_check_failed": "未通过",
        "grad_check_own_dims": "网络本身的维度",
        "grad_check_too_large": "梯度检验已跳过：{name} 有 {entries} 个元素，超过中心差分检验的上限（{limit}）。",
        "grad_check_assumption": "梯度检验已跳过：推导假设了“{rule}”，随机数据无法满足。",
    },
}


# The words of `tracegrad check` (derive.check): {grad} a gradient symbol, {expr} and {part} rendered
# mathematics, {factor} a rendered scalar.
CHECK_PROSE: dict[str, dict[str, str]] = {
    "en": {
        "check_correct": "correct: the answer equals {grad} = {expr}",
        "check_compared": "compared on {count} random draws: dimensions {dims}; data scales {scales}; in "
                          "{bits}-bit interval arithmetic, which bounds every rounding error",
        "check_fixed_dims": "those the network fixes",
        "check_where": "{dims}, data scale {scale}",
        "check_wrong": "wrong: the answer differs from {grad} = {expr} (max relative error {err})",
        "check_undecided": "not confirmed: at {where} the answer and {grad} agree only to within the rounding "
                           "error of {bits}-bit interval arithmetic (the answer cancels very large terms)",
        "check_shape": "wrong shape: {grad} is {want}, the answer is {got}",
        "check_scalar": "wrong shape: {grad} is {want}, the answer is a scalar",
        "check_conform": "the answer does not conform: {grad} is {want}; {error}",
        "check_undefined_answer": "wrong: the answer is undefined (column {column}): {error}",
        "check_row_bias": "{name} is a 1×{cols} row broadcast over the batch: its gradient sums the rows, 𝟏ᵀ(…)",
        "check_transposed": "the answer has the transposed shape: a transpose is missing or extra",
        "check_factor_sign": "the answer is −1 times {grad}: a sign error",
        "check_factor_zero": "the answer is 0 wherever {grad} is not",
        "check_factor_constant": "the answer is {factor} times {grad}: a constant factor is wrong",
        "check_factor_dims": "the answer is {factor} times {grad}: a factor depending on the dimensions is wrong",
        "check_factor_other": "the answer is a multiple of {grad} at every draw, by a factor that is no simple "
                              "function of {dims}: {ratios}",
        "check_right_as": "{grad} is right (as {expr})",
        "check_up_to_factor": "{grad} appears up to a factor: the answer's {expr} is {factor} times {grad}",
        "check_first_step": "the first step already differs: no part of the answer equals {grad} = {expr} "
                            "or a multiple of it",
        "check_first_step_factor": "the first step already differs: the answer's {part} is {factor} times "
                                   "{grad} = {expr}",
        "check_step": "the step from {up} to {grad} is where the answer first differs: no part of the answer "
                      "equals {grad} = {expr} or a multiple of it",
        "check_step_factor": "the step from {up} to {grad} is where the answer first differs: the answer's "
                             "{part} is {factor} times {grad} = {expr}",
        "check_last_step": "the last step, from {up} to {grad}, is where the answer first differs",
        "check_counterexample": "counterexample ({dims}): {data}",
        "check_counterexample_fixed": "counterexample: {data}",
        "check_entry": "entry ({i},{j}) of the answer is {got}, of {grad} {want}",
        "check_undefined": "undefined",
        "check_unknown_variable": "{name} is not a variable of the network; choose from {choices}",
        "check_unknown_network": "unknown network {name}; use 'seed' or pass a derive.Network",
        "check_under_reading": "under the reading {reading}: {verdict}",
        "check_uses_gradient": "not an answer: it uses {used}, while {grad} may be written only with the "
                               "gradients of the stages that depend on it ({allowed})",
        "check_other_reading": "under the reading {reading}: {verdict}",
        "check_unsupported": "the checker cannot evaluate {what}",
        "check_too_large": "the checker evaluates in high precision on at most {max_entries} entries, each "
                           "dimension at most {max_dim}; these dimensions give {entries} entries (largest "
                           "dimension {largest}): leave out --dims or give smaller ones",
    },
    "zh": {
        "check_correct": "正确：答案等于 {grad} = {expr}",
        "check_compared": "在 {count} 组随机数据上比较：维度 {dims}；数据尺度 {scales}；"
                          "用 {bits} 位区间算术计算，每个舍入误差都有界",
        "check_fixed_dims": "网络给定的维度",
        "check_where": "{dims}、数据尺度 {scale}",
        "check_wrong": "错误：答案与 {grad} = {expr} 不同（最大相对误差 {err}）",
        "check_undecided": "无法确认：在 {where} 处，答案与 {grad} 只在 {bits} 位区间算术的舍入误差范围内相符"
                           "（答案中有极大的项相互抵消）",
        "check_shape": "维度错误：{grad} 为 {want}，答案为 {got}",
        "check_scalar": "维度错误：{grad} 为 {want}，答案为标量",
        "check_conform": "答案的维度不相容：{grad} 为 {want}；{error}",
        "check_undefined_answer": "错误：答案在第 {column} 列处无定义（如除以零矩阵、零矩阵求逆）",
        "check_row_bias": "{name} 是在批量上广播的 1×{cols} 行向量：其导数要对各行求和，即 𝟏ᵀ(…)",
        "check_transposed": "答案的维度恰好是转置：少了或多了一次转置",
        "check_factor_sign": "答案是 {grad} 的 −1 倍：符号错误",
        "check_factor_zero": "在 {grad} 不为零处，答案为零",
        "check_factor_constant": "答案是 {grad} 的 {factor} 倍：常数因子错误",
        "check_factor_dims": "答案是 {grad} 的 {factor} 倍：与维度有关的因子错误",
        "check_factor_other": "答案在每组数据上都是 {grad} 的倍数，但倍数不是 {dims} 的简单函数：{ratios}",
        "check_right_as": "{grad} 正确（即答案中的 {expr}）",
        "check_up_to_factor": "{grad} 只差一个因子：答案中的 {expr} 是 {grad} 的 {factor} 倍",
        "check_first_step": "第一步就已不同：答案中没有任何部分等于 {grad} = {expr} 或其倍数",
        "check_first_step_factor": "第一步就已不同：答案中的 {part} 是 {grad} = {expr} 的 {factor} 倍",
        "check_step": "答案从 {up} 到 {grad} 这一步开始不同：答案中没有任何部分等于 {grad} = {expr} 或其倍数",
        "check_step_factor": "答案从 {up} 到 {grad} 这一步开始不同：答案中的 {part} 是 {grad} = {expr} 的 "
                             "{factor} 倍",
        "check_last_step": "答案在最后一步（从 {up} 到 {grad}）开始不同",
        "check_counterexample": "反例（{dims}）：{data}",
        "check_counterexample_fixed": "反例：{data}",
        "check_entry": "答案的第 ({i},{j}) 个元素为 {got}，{grad} 的为 {want}",
        "check_undefined": "无定义",
        "check_unknown_variable": "{name} 不是该网络的变量；可选：{choices}",
        "check_unknown_network": "未知的网络 {name}；请用 'seed' 或传入 derive.Network",
        "check_under_reading": "按读法 {reading}：{verdict}",
        "check_uses_gradient": "不是答案：它用到了 {used}，而 {grad} 只能用依赖于该变量的中间量的梯度（{allowed}）来写",
        "check_other_reading": "按读法 {reading}：{verdict}",
        "check_unsupported": "检查器无法计算 {what}",
        "check_too_large": "检查器用高精度算术计算，至多 {max_entries} 个元素、每个维度至多 {max_dim}；"
                           "这些维度共有 {entries} 个元素（最大维度 {largest}）：请去掉 --dims 或给出更小的维度",
    },
}
# The words of the audit of the seed document (tests/hand_audit.py, the oracle of its grade; check's readings): a reading's {math} is the formula as so
# read (or the variable f is a function of); a verdict's {shape} the shape of a full bias.
AUDIT_PROSE: dict[str, dict[str, str]] = {
    "en": {
        "audit_col_formula": "formula",
        "audit_col_reading": "reading",
        "audit_col_shape": "shape (row bias / n×m bias)",
        "audit_col_conforms": "conforms",
        "audit_col_error": "max rel. error",
        "audit_col_verdict": "verdict",
        "audit_yes": "yes",
        "audit_no": "no",
        "audit_reading_as_written": "as written",
        "audit_reading_as_written_of": "as written (f as a function of {math})",
        "audit_reading_summed": "corrected: summed over the batch",
        "audit_reading_looser": "⊙ looser than product: {math}",
        "audit_reading_tighter": "⊙ tighter than product: {math}",
        "audit_reading_between": "⊙ over part of the product: {math}",
        "audit_reading_previous_line": "as the derivation's line before it: {math}",
        "audit_reading_compiled_row": "compiled kernel, bias row",
        "audit_reading_compiled_full": "compiled kernel, bias full",
        "audit_verdict_correct": "correct",
        "audit_verdict_full_bias_only": "correct for bias {shape} only",
        "audit_verdict_row_bias_only": "correct for row bias only",
        "audit_verdict_wrong": "wrong",
        "audit_verdict_not_conforming": "shapes do not conform",
        "audit_verdict_inconclusive": "inconclusive",
    },
    "zh": {
        "audit_col_formula": "公式",
        "audit_col_reading": "解读",
        "audit_col_shape": "结果形状（行偏置 / n×m 偏置）",
        "audit_col_conforms": "形状相容",
        "audit_col_error": "最大相对误差",
        "audit_col_verdict": "结论",
        "audit_yes": "是",
        "audit_no": "否",
        "audit_reading_as_written": "按原文",
        "audit_reading_as_written_of": "按原文（f 视为 {math} 的函数）",
        "audit_reading_summed": "修正：对批次求和",
        "audit_reading_looser": "⊙ 优先级低于矩阵乘：{math}",
        "audit_reading_tighter": "⊙ 优先级高于矩阵乘：{math}",
        "audit_reading_between": "⊙ 作用于乘积的一部分：{math}",
        "audit_reading_previous_line": "按前一行推导：{math}",
        "audit_reading_compiled_row": "编译内核，行偏置",
        "audit_reading_compiled_full": "编译内核，n×m 偏置",
        "audit_verdict_correct": "正确",
        "audit_verdict_full_bias_only": "仅当偏置为 {shape} 时正确",
        "audit_verdict_row_bias_only": "仅当偏置为行向量时正确",
        "audit_verdict_wrong": "错误",
        "audit_verdict_not_conforming": "形状不相容",
        "audit_verdict_inconclusive": "无法判定",
    },
}
# The words of the grade of a write-up (derive.grading): its verdicts' messages ({line} a source
# line, {names} names, {reading} a reading of the notation, {network} a reading of the network), the
# rules of the catalogue of mistakes (grade_rule_*), and the report's headings (grade_report_*).
GRADE_PROSE: dict[str, dict[str, str]] = {
    "en": {
        "grade_as_written": "as written",
        "grade_odot_over": "⊙ over {part}: {math}",
        "grade_network": "the network from the problem statement",
        "grade_network_program": "the network from {source}",
        "grade_statement": "defines {name}, part of the problem statement",
        "grade_unknown": "uses names the problem never defines: {names}",
        "grade_defines_unknown": "defines names the problem never uses: {names}",
        "grade_unreadable": "cannot be read: {error}",
        "grade_prose": "prose, no equation to check",
        "grade_jacobian": "a product of derivatives of matrices by matrices ({what}): not checked, only its result",
        "grade_not_variable": "{name} is not a variable of the network",
        "grade_follows": "follows from the line before",
        "grade_follows_held": "follows from the line before with the differentials of everything but {var} held at zero",
        "grade_follows_from": "follows from line {line} (the line before it does not hold)",
        "grade_breaks": "breaks the chain: it does not follow from line {line}",
        "grade_restates": "restates the definition of {name}",
        "grade_shorthand": "names {name} for the lines after it",
        "grade_differs": "differs from the definition of {name} in the problem statement",
        "grade_only_under": "holds only when {readings}",
        "grade_under": "{reading}; {network}",
        "grade_noted": " ({notes})",
        "grade_rule_sign": "the sign is flipped",
        "grade_rule_factor": "a factor is lost: the line is {factor} times the line before",
        "grade_rule_transpose": "a transpose dropped or added ({what})",
        "grade_rule_cyclic": "the cyclic property misapplied: tr(ABC) = tr(CAB) = tr(BCA), the factors {order} are no rotation",
        "grade_rule_sigma": "σ′ missing: d σ(h) = σ′(h) ⊙ dh",
        "grade_rule_odot": "⊙ written as a matrix product",
        "grade_rule_product": "a term of the product rule missing: d(AB) = dA B + A dB",
        "grade_rule_none": "no rule of the catalogue explains it",
        "grade_bias_full": "{name} an {shape} matrix",
        "grade_bias_row": "{name} a 1×{cols} row broadcast over the batch",
        "grade_list_sep": ", ",
    },
    "zh": {
        "grade_as_written": "按书写",
        "grade_odot_over": "⊙ 作用于 {part}：{math}",
        "grade_network": "题目描述中的网络",
        "grade_network_program": "{source} 中的网络",
        "grade_statement": "定义 {name}，属于题目描述",
        "grade_unknown": "使用了题目中从未定义的名字：{names}",
        "grade_defines_unknown": "定义了题目中从未使用的名字：{names}",
        "grade_unreadable": "无法读取：{error}",
        "grade_prose": "文字，无等式可查",
        "grade_jacobian": "矩阵对矩阵的导数之积（{what}）：不检查，只检查其结果",
        "grade_not_variable": "{name} 不是网络中的变量",
        "grade_follows": "由上一行推出",
        "grade_follows_held": "在除 {var} 外各微分取零时由上一行推出",
        "grade_follows_from": "由第 {line} 行推出（上一行不成立）",
        "grade_breaks": "推导在此中断：不能由第 {line} 行推出",
        "grade_restates": "重述 {name} 的定义",
        "grade_shorthand": "定义 {name}，供后文使用",
        "grade_differs": "与题目描述中 {name} 的定义不同",
        "grade_only_under": "仅当 {readings} 时成立",
        "grade_under": "{reading}；{network}",
        "grade_noted": "（{notes}）",
        "grade_rule_sign": "符号相反",
        "grade_rule_factor": "丢了一个系数：此行是上一行的 {factor} 倍",
        "grade_rule_transpose": "漏写或多写了转置（{what}）",
        "grade_rule_cyclic": "误用迹的轮换性：tr(ABC) = tr(CAB) = tr(BCA)，因子顺序 {order} 不是轮换",
        "grade_rule_sigma": "漏了 σ′：d σ(h) = σ′(h) ⊙ dh",
        "grade_rule_odot": "⊙ 写成了矩阵乘法",
        "grade_rule_product": "乘积法则漏了一项：d(AB) = dA B + A dB",
        "grade_rule_none": "常见错误表中没有能解释它的规则",
        "grade_bias_full": "{name} 为 {shape} 矩阵",
        "grade_bias_row": "{name} 为 1×{cols} 行向量（按批广播）",
        "grade_list_sep": "，",
    },
}
for _lang, _words in {
    "en": {
        "grade_report_correct": "correct",
        "grade_report_correct-under-reading": "correct under a reading",
        "grade_report_wrong": "wrong",
        "grade_report_shape-error": "shapes do not conform",
        "grade_report_uncheckable": "not checked",
        "grade_report_result": "result",
        "grade_report_chain": "chain",
        "grade_report_definition": "definition",
        "grade_report_other": "other",
        "grade_report_title": "Grade of {source}",
        "grade_report_network": "Network: {network}.",
        "grade_report_summary": "{total} equations: {counts}.",
        "grade_report_line": "line",
        "grade_report_step": "step",
        "grade_report_kind": "kind",
        "grade_report_verdict": "verdict",
        "grade_report_equation": "equation",
        "grade_report_message": "message",
        "grade_report_readings": "readings",
    },
    "zh": {
        "grade_report_correct": "正确",
        "grade_report_correct-under-reading": "某种理解下正确",
        "grade_report_wrong": "错误",
        "grade_report_shape-error": "形状不匹配",
        "grade_report_uncheckable": "未检查",
        "grade_report_result": "结果",
        "grade_report_chain": "推导链",
        "grade_report_definition": "定义",
        "grade_report_other": "其他",
        "grade_report_title": "{source} 的批改",
        "grade_report_network": "网络：{network}。",
        "grade_report_summary": "共 {total} 个等式：{counts}。",
        "grade_report_line": "行",
        "grade_report_step": "步",
        "grade_report_kind": "类别",
        "grade_report_verdict": "结论",
        "grade_report_equation": "等式",
        "grade_report_message": "说明",
        "grade_report_readings": "各种理解",
    },
}.items():
    GRADE_PROSE[_lang].update(_words)
for _lang in LANGUAGES:
    PROSE[_lang].update(CHECK_PROSE[_lang])
    PROSE[_lang].update(AUDIT_PROSE[_lang])
    PROSE[_lang].update(GRADE_PROSE[_lang])


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

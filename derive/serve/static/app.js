/* tracegrad serve: the page.  Vanilla JavaScript, no framework, no network beyond this app's /api.
 *
 * The input (a program, or an expression with its shapes, wrt and order) lives in the editor and in
 * location.hash (#program=… or #expression=…&shapes=…&wrt=…&order=2, and lang=zh), so a link
 * reproduces a derivation.  Each change is derived after a 400 ms pause; a newer request aborts the
 * older one (AbortController) and a response that is not the latest request's is ignored.
 */
"use strict";

(() => {
  const STRINGS = {
    en: {
      page_title: "tracegrad — matrix calculus, step by step",
      skip: "Skip to the derivation",
      tagline: "matrix calculus, step by step",
      examples: "Examples",
      choose_example: "Choose an example…",
      input: "Input",
      editor_label: "Program or expression",
      editor_hint: "A program (declarations, then assignments; the last line is the loss) or one " +
        "expression with its shapes. Ctrl+Enter derives at once.",
      mode_program: "program",
      mode_expression: "expression",
      shapes: "Shapes",
      wrt: "With respect to",
      order: "Derivative",
      order_1: "Gradient",
      order_2: "Hessian",
      shapes_hint_expression: "Shapes as name: rows×cols, separated by commas; the variables to " +
        "differentiate by, separated by commas.",
      shapes_hint_program: "A program declares its shapes; “With respect to” may name other variables " +
        "than its parameters.",
      check_heading: "Check my answer",
      check_wrt: "∂f/∂",
      check_wrt_aria: "The variable: ∂f/∂ of",
      writeup: "Write-up",
      syntax: "Notation",
      syntax_auto: "ASCII or LaTeX (auto)",
      syntax_ascii: "ASCII",
      syntax_latex: "LaTeX",
      answer: "Your answer",
      answer_placeholder: "2*X'*((Ypred - Y)*W2') or 2X^T(Y_{pred} - Y)W_2^T",
      check: "Check",
      correct: "Correct",
      wrong: "Not right",
      grade_heading: "Grade a write-up",
      grade_hint: "A student's derivation as Markdown (with $$ … $$), LaTeX or text: every equation is " +
        "checked, and the first wrong line named.",
      grade_use_program: "against the program in the editor",
      report: "Write-up report",
      grade: "Grade",
      grade_no_file: "Choose a file first.",
      choose_file: "Choose a file…",
      no_file: "No file chosen",
      first_wrong_line: "First wrong line: {line}",
      all_lines_hold: "No wrong line found.",
      derivation: "Derivation",
      copy_all: "Copy LaTeX",
      copy_step: "TeX",
      copy_step_label: "Copy this step's LaTeX",
      jump_label: "Go to a section",
      share: "Copy link",
      download: "Download",
      kernel: "Kernel",
      backend: "Backend",
      text_size: "Text size",
      smaller: "Smaller text",
      larger: "Larger text",
      copied: "Copied to the clipboard",
      link_copied: "Link copied",
      copy_failed: "Could not copy: select the text and copy it by hand",
      deriving: "Deriving…",
      derived: "Derived in {seconds} s: {sections}",
      sections: "{n} sections",
      one_section: "1 section",
      error_status: "The input has an error (below the editor); the last derivation is shown dimmed.",
      error_status_alone: "The input has an error (below the editor).",
      network_error: "The server did not answer ({detail}).",
      welcome_title: "Type a network or an expression",
      welcome_text: "The derivation appears as you type: every differential, every trace identity, " +
        "each gradient read off from df = tr(Gᵀ dX).",
      cheat_title: "The language",
      cheat_decl: "an input, a parameter and their shapes",
      cheat_ops: "product, Hadamard product, transpose",
      cheat_elementwise: "elementwise functions",
      cheat_scalars: "trace, squared Frobenius norm, sum of entries",
      cheat_layers: "the layers of a course",
      line_column: "line {line}, column {column}",
      column: "column {column}",
      shapes_error: "Shapes: cannot read “{part}”; write name: rows×cols, e.g. X: n×d, W: d×k",
      need_input: "Type a program or an expression first.",
      need_answer: "Type an answer to check.",
      need_wrt: "Choose the variable.",
      downloading: "Preparing {what}…",
      saved: "Saved {name}",
    },
    zh: {
      page_title: "tracegrad — 矩阵求导，一步一步",
      skip: "跳到推导过程",
      tagline: "矩阵求导，一步一步",
      examples: "示例",
      choose_example: "选择一个示例…",
      input: "输入",
      editor_label: "程序或表达式",
      editor_hint: "程序（先声明变量，再逐行赋值，最后一行是损失函数）或一个表达式及其形状。Ctrl+Enter 立即推导。",
      mode_program: "程序",
      mode_expression: "表达式",
      shapes: "形状",
      wrt: "求导变量",
      order: "导数",
      order_1: "梯度",
      order_2: "Hessian 矩阵",
      shapes_hint_expression: "形状写作 名称: 行×列，用逗号分隔；求导变量用逗号分隔。",
      shapes_hint_program: "程序自己声明形状；“求导变量”可以指定参数以外的变量。",
      check_heading: "检查我的答案",
      check_wrt: "∂f/∂",
      check_wrt_aria: "求导变量：∂f/∂",
      writeup: "作业文件",
      syntax: "记法",
      syntax_auto: "ASCII 或 LaTeX（自动）",
      syntax_ascii: "ASCII",
      syntax_latex: "LaTeX",
      answer: "你的答案",
      answer_placeholder: "2*X'*((Ypred - Y)*W2') 或 2X^T(Y_{pred} - Y)W_2^T",
      check: "检查",
      correct: "正确",
      wrong: "不正确",
      grade_heading: "批改作业",
      grade_hint: "学生的推导（Markdown，公式写在 $$ … $$ 中；LaTeX 或纯文本）：逐个检查每个等式，指出第一处错误的行。",
      grade_use_program: "以编辑器中的程序为题目",
      report: "作业批改报告",
      grade: "批改",
      grade_no_file: "请先选择文件。",
      choose_file: "选择文件…",
      no_file: "未选择文件",
      first_wrong_line: "第一处错误：第 {line} 行",
      all_lines_hold: "没有发现错误的行。",
      derivation: "推导过程",
      copy_all: "复制 LaTeX",
      copy_step: "TeX",
      copy_step_label: "复制这一步的 LaTeX",
      jump_label: "跳到某一节",
      share: "复制链接",
      download: "下载",
      kernel: "计算代码",
      backend: "后端",
      text_size: "字号",
      smaller: "缩小字号",
      larger: "放大字号",
      copied: "已复制到剪贴板",
      link_copied: "链接已复制",
      copy_failed: "无法复制：请手动选中文本复制",
      deriving: "推导中…",
      derived: "推导完成，用时 {seconds} 秒：{sections}",
      sections: "{n} 节",
      one_section: "1 节",
      error_status: "输入有错误（见编辑器下方）；上一次的推导以灰色显示。",
      error_status_alone: "输入有错误（见编辑器下方）。",
      network_error: "服务器没有响应（{detail}）。",
      welcome_title: "输入一个网络或一个表达式",
      welcome_text: "推导随输入实时出现：每一个微分、每一个迹的恒等式，以及由 df = tr(Gᵀ dX) 得到的每个梯度。",
      cheat_title: "语言",
      cheat_decl: "输入、参数及其形状",
      cheat_ops: "矩阵乘法、Hadamard 积、转置",
      cheat_elementwise: "逐元素函数",
      cheat_scalars: "迹、Frobenius 范数的平方、元素之和",
      cheat_layers: "课程中的各种层",
      line_column: "第 {line} 行，第 {column} 列",
      column: "第 {column} 列",
      shapes_error: "形状：无法读取“{part}”；请写作 名称: 行×列，例如 X: n×d, W: d×k",
      need_input: "请先输入程序或表达式。",
      need_answer: "请输入要检查的答案。",
      need_wrt: "请选择变量。",
      downloading: "正在生成 {what}…",
      saved: "已保存 {name}",
    },
  };

  const DEBOUNCE_MS = 400;
  const FIELD_LABELS = { shapes: "shapes", wrt: "wrt", order: "order" };
  const NAME = "[A-Za-z_][A-Za-z0-9_]*";
  const $ = (id) => document.getElementById(id);

  const el = {};
  const state = {
    lang: "en",
    examples: [],
    seq: 0,             // the number of the latest derive request
    controller: null,   // its AbortController
    timer: 0,
    last: null,         // {key, data}: the latest derivation shown
    checkSeq: 0,
    checkController: null,
    checked: false,     // a check result is shown (re-requested when the language changes)
    graded: false,
    zoom: 1,
  };

  // ---- words -----------------------------------------------------------------------------------

  function t(key, vars) {
    const table = STRINGS[state.lang] || STRINGS.en;
    let s = key in table ? table[key] : (STRINGS.en[key] || key);
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  }

  function exampleTitle(ex) {
    return (state.lang === "zh" && ex.title_zh) || ex.title || ex.id;
  }

  function applyLanguage() {
    document.documentElement.lang = state.lang;
    document.title = t("page_title");
    document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((node) => {
      node.placeholder = t(node.dataset.i18nPlaceholder);
    });
    document.querySelectorAll("[data-i18n-aria]").forEach((node) => {
      node.setAttribute("aria-label", t(node.dataset.i18nAria));
    });
    for (const button of document.querySelectorAll(".langswitch button")) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === state.lang));
    }
    document.querySelectorAll(".copy-step").forEach((b) => {
      b.textContent = t("copy_step");
      b.setAttribute("aria-label", t("copy_step_label"));
    });
    renderExamples();
    updateMode();
    showFileName();
  }

  // ---- the input -------------------------------------------------------------------------------

  /** Whether the text is a program (as derive.program.is_program decides). */
  function isProgram(text) {
    return /[=\n;]/.test(text) || new RegExp(`^\\s*(param\\s+)?${NAME}\\s*:`).test(text);
  }

  /** "X: n×d, W: d×k" (also "X=n,d; W=d,k") as {"X": ["n", "d"], …}; a shape "d" is a column. */
  function parseShapes(text) {
    const shapes = {};
    const entry = new RegExp(`(${NAME})\\s*[:=]\\s*([^:=]*?)\\s*(?=[,;]?\\s*${NAME}\\s*[:=]|$)`, "gy");
    const source = text.trim();
    let at = 0;
    while (at < source.length) {
      entry.lastIndex = at;
      const m = entry.exec(source);
      if (!m || m[0].length === 0) return { error: t("shapes_error", { part: source.slice(at).split(/[,;]/)[0] }) };
      const given = m[2].replace(/[,;]\s*$/, "").trim();
      if (/^(scalar|标量|\(\s*\))$/i.test(given)) {      // a scalar: no dimensions
        shapes[m[1]] = [];
        at = m.index + m[0].length + /^[\s,;]*/.exec(source.slice(m.index + m[0].length))[0].length;
        continue;
      }
      const dims = given.split(/\s*(?:×|\*|,|\bx\b)\s*/).filter((d) => d !== "");
      if (dims.length < 1 || dims.length > 2 || !dims.every((d) => /^[A-Za-z0-9_]+$/.test(d))) {
        return { error: t("shapes_error", { part: m[0].replace(/[,;]\s*$/, "") }) };
      }
      shapes[m[1]] = dims.length === 1 ? [dims[0], "1"] : dims;
      at = m.index + m[0].length;
      const sep = /^[\s,;]*/.exec(source.slice(at));
      at += sep[0].length;
    }
    return { value: shapes };
  }

  function formatShapes(shapes) {
    if (!shapes) return "";
    if (typeof shapes === "string") return shapes;
    return Object.entries(shapes).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join("×") : v}`).join(", ");
  }

  function parseList(text) {
    return text.split(/[\s,;]+/).filter((s) => s !== "");
  }

  function editorText() {
    return el.editor.value.replace(/\s+$/, "");
  }

  /** The request's input fields, {empty}, or {error, field}. */
  function readInput() {
    const text = editorText();
    if (!text.trim()) return { empty: true };
    const wrt = parseList(el.wrt.value);
    if (isProgram(text)) {
      const body = { program: text };
      if (wrt.length) body.wrt = wrt;
      return { mode: "program", body };
    }
    const shapes = parseShapes(el.shapes.value);
    if (shapes.error) return { error: shapes.error, field: "shapes" };
    const body = { expression: text, shapes: shapes.value, wrt };
    if (el.order.value === "2") body.order = 2;
    return { mode: "expression", body };
  }

  /** The editor grows with its text (up to 60% of the window), so a program is seen whole. */
  function fitEditor() {
    const editor = el.editor;
    editor.style.height = "auto";
    const limit = Math.round(window.innerHeight * 0.6);
    editor.style.height = `${Math.min(limit, editor.scrollHeight + 2)}px`;
  }

  function updateMode() {
    fitEditor();
    const text = editorText();
    const program = text.trim() !== "" && isProgram(text);
    el.mode.textContent = text.trim() ? t(program ? "mode_program" : "mode_expression") : "";
    el.mode.hidden = !text.trim();
    el.shapes.disabled = program;
    el.order.disabled = program;
    el.exprFields.classList.toggle("program", program);
    el.shapesNote.textContent = t(program ? "shapes_hint_program" : "shapes_hint_expression");
    el.gradeUseProgram.disabled = !program;
  }

  // ---- the URL ---------------------------------------------------------------------------------

  function saveHash() {
    const p = new URLSearchParams();
    const text = editorText();
    if (text.trim()) {
      if (isProgram(text)) {
        p.set("program", text);
      } else {
        p.set("expression", text);
        if (el.shapes.value.trim()) p.set("shapes", el.shapes.value.trim());
        if (el.order.value === "2") p.set("order", "2");
      }
      if (el.wrt.value.trim()) p.set("wrt", el.wrt.value.trim());
    }
    if (state.lang !== "en") p.set("lang", state.lang);
    const hash = p.toString();
    const url = location.pathname + location.search + (hash ? `#${hash}` : "");
    if (url !== location.pathname + location.search + location.hash) history.replaceState(null, "", url);
  }

  /** Restores the input from location.hash; false when the hash holds none. */
  function restoreHash() {
    const raw = location.hash.replace(/^#/, "");
    if (!raw) return false;
    const p = new URLSearchParams(raw);
    if (!["program", "expression", "lang", "p"].some((k) => p.has(k))) return false;
    el.editor.value = p.get("program") ?? p.get("p") ?? p.get("expression") ?? "";
    el.shapes.value = p.get("shapes") || "";
    el.wrt.value = p.get("wrt") || "";
    el.order.value = p.get("order") === "2" ? "2" : "1";
    if (p.has("lang")) setLanguage(p.get("lang") === "zh" ? "zh" : "en", false);
    updateMode();
    return true;
  }

  // ---- requests --------------------------------------------------------------------------------

  /** POST a JSON body; answers {ok, status, data, blob?}, data the parsed JSON (or {error}). */
  async function post(url, body, signal, binary = false) {
    const init = { method: "POST", signal };
    if (body instanceof FormData) {
      init.body = body;
    } else {
      init.headers = { "Content-Type": "application/json" };
      init.body = JSON.stringify(body);
    }
    const res = await fetch(url, init);
    const type = res.headers.get("Content-Type") || "";
    if (binary && res.ok && !type.includes("json")) return { ok: true, status: res.status, blob: await res.blob() };
    let data;
    const text = await res.text();
    try {
      data = type.includes("json") || /^\s*[{[]/.test(text) ? JSON.parse(text) : { text };
    } catch (e) {
      data = { error: text.slice(0, 300) || res.statusText };
    }
    if (!res.ok && (!data || typeof data !== "object" || !("error" in data))) {
      data = { error: (data && (data.detail || data.text)) || `${res.status} ${res.statusText}` };
    }
    return { ok: res.ok, status: res.status, data };
  }

  function errorMessage(data, status) {
    if (data && typeof data.error === "string") return data.error;
    if (data && data.error && data.error.message) return data.error.message;
    return `HTTP ${status}`;
  }

  // ---- errors under a field --------------------------------------------------------------------

  /** Shows ``message`` in ``box`` (.caret + .message), with the source line and a caret under
   * ``column`` of ``line`` (1-based) of ``source`` when they are known. */
  function showError(box, message, source, line, column) {
    const caret = box.querySelector(".caret");
    const text = box.querySelector(".message");
    let where = "";
    caret.textContent = "";
    caret.hidden = true;
    delete caret.dataset.line;
    delete caret.dataset.column;
    if (source != null && Number.isInteger(column) && column >= 1) {
      const lines = source.split("\n");
      const n = Number.isInteger(line) && line >= 1 ? line : 1;
      if (n <= lines.length) {
        const code = lines[n - 1].replace(/\t/g, " ");
        const col = Math.min(column, code.length + 1);
        const mark = document.createElement("span");
        mark.className = "mark";
        mark.textContent = `${" ".repeat(col - 1)}^`;
        caret.append(`${code}\n`, mark);
        caret.hidden = false;
        caret.dataset.line = String(n);
        caret.dataset.column = String(col);
        where = lines.length > 1 || Number.isInteger(line) ? t("line_column", { line: n, column: col }) : t("column", { column: col });
      }
    }
    text.textContent = where && !/\bline \d+|\bcolumn \d+|第 \d+ [行列]/.test(message) ? `${where}: ${message}` : message;
    box.hidden = false;
  }

  function hideError(box) {
    box.hidden = true;
    box.querySelector(".caret").textContent = "";
    box.querySelector(".message").textContent = "";
  }

  /** Clicking the caret puts the editor's cursor at the error. */
  function jumpToError() {
    const caret = el.errorCaret;
    if (!caret.dataset.line) return;
    const lines = el.editor.value.split("\n");
    let at = 0;
    for (let i = 0; i < Number(caret.dataset.line) - 1 && i < lines.length; i++) at += lines[i].length + 1;
    at += Number(caret.dataset.column) - 1;
    el.editor.focus();
    el.editor.setSelectionRange(at, at);
  }

  // ---- the derivation --------------------------------------------------------------------------

  /** The output's state for tests and styles: empty, pending, ready (the latest input derived) or error. */
  function setState(value) {
    el.output.dataset.state = value;
  }

  function schedule() {
    setState("pending");
    updateMode();
    saveHash();
    clearTimeout(state.timer);
    state.timer = setTimeout(derive, DEBOUNCE_MS);
  }

  function setStatus(text, kind = "") {
    el.status.textContent = text;
    el.status.className = `status ${kind}`;
  }

  function setDownloads(enabled) {
    for (const b of [el.copyAll, el.pdf, el.md, el.tex, el.kernel]) b.disabled = !enabled;
  }

  function showWelcome() {
    el.output.innerHTML = "";
    el.output.classList.remove("stale");
    el.welcome.hidden = !el.reportView.hidden;
    state.last = null;
    setState("empty");
    setDownloads(false);
    setStatus("");
    fillCheckWrt();
  }

  async function derive() {
    clearTimeout(state.timer);
    updateMode();
    saveHash();
    const input = readInput();
    if (state.controller) state.controller.abort();
    state.controller = null;
    const seq = ++state.seq;
    if (input.empty) {
      hideError(el.editorError);
      showWelcome();
      return;
    }
    if (input.error) {
      setState("error");
      showError(el.editorError, input.error);
      el.output.classList.add("stale");
      setStatus(t(state.last ? "error_status" : "error_status_alone"), "bad");
      return;
    }
    const controller = new AbortController();
    state.controller = controller;
    const source = input.body.program ?? input.body.expression;
    const lang = state.lang;
    el.output.setAttribute("aria-busy", "true");
    setState("pending");
    setStatus(t("deriving"), "busy");
    const started = performance.now();
    let res;
    try {
      res = await post("/api/derive", { ...input.body, lang, format: "html" }, controller.signal);
    } catch (e) {
      if (e.name === "AbortError" || seq !== state.seq) return;
      el.output.removeAttribute("aria-busy");
      setState("error");
      setStatus(t("network_error", { detail: e.message }), "bad");
      return;
    }
    if (seq !== state.seq) return;   // an older request answered late: a newer one is on its way
    state.controller = null;
    el.output.removeAttribute("aria-busy");
    if (!res.ok) {
      const d = res.data || {};
      if (FIELD_LABELS[d.field]) {    // an error in the shapes, wrt or order field: no column in the editor
        showError(el.editorError, `${t(FIELD_LABELS[d.field])}: ${errorMessage(d, res.status)}`);
      } else {
        showError(el.editorError, errorMessage(d, res.status), source, d.line ?? null, d.column ?? null);
      }
      el.editorError.dataset.kind = d.kind || "";
      el.output.classList.add("stale");
      setState("error");
      setStatus(t(state.last ? "error_status" : "error_status_alone"), "bad");
      return;
    }
    hideError(el.editorError);
    state.last = { key: JSON.stringify(input.body), lang, data: res.data, input };
    renderDerivation(res.data);
    setState("ready");
    const n = el.output.querySelectorAll("details").length;
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    setStatus(t("derived", { seconds, sections: n === 1 ? t("one_section") : t("sections", { n }) }), "ok");
  }

  function renderDerivation(data) {
    const closed = new Set(Array.from(el.output.querySelectorAll("details[id]:not([open])"), (d) => d.id));
    el.welcome.hidden = true;
    el.output.classList.remove("stale");
    el.output.innerHTML = typeof data.html === "string" ? data.html : "";
    for (const d of el.output.querySelectorAll("details[id]")) if (closed.has(d.id)) d.open = false;
    attachStepLatex(data.steps_latex);
    decorateSteps();
    addJumps();
    fillCheckWrt(data.gradients || data.hessians);
    setDownloads(true);
    el.copyAll.disabled = typeof data.latex !== "string";
  }

  /** Where the fragment's rows carry no data-latex, the response's steps_latex supplies it: a list of
   * strings in the order of the step rows, or of {id, latex} naming elements. */
  function attachStepLatex(list) {
    if (!Array.isArray(list) || list.length === 0) return;
    if (typeof list[0] === "string") {
      const rows = el.output.querySelectorAll("table.steps tbody tr");
      if (rows.length === list.length && !el.output.querySelector("[data-latex]")) {
        rows.forEach((row, i) => { row.dataset.latex = list[i]; });
      }
      return;
    }
    for (const item of list) {
      if (!item || typeof item !== "object" || !item.id) continue;
      const target = document.getElementById(String(item.id));
      if (target && el.output.contains(target) && !target.dataset.latex) target.dataset.latex = item.latex || "";
    }
  }

  /** A copy button beside each element that carries its LaTeX. */
  function decorateSteps() {
    for (const node of el.output.querySelectorAll("[data-latex]")) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "copy-step";
      button.textContent = t("copy_step");
      button.setAttribute("aria-label", t("copy_step_label"));
      button.title = node.dataset.latex;
      if (node.tagName === "TR") {
        const cell = node.querySelector("td.rule") || node.lastElementChild;
        (cell || node).appendChild(button);
      } else if (node.tagName === "DETAILS") {
        const body = node.querySelector(":scope > .body") || node;
        body.insertBefore(button, body.firstChild);
      } else {
        node.appendChild(button);
      }
    }
  }

  /** A row of links above the derivation, one per section (its title's mathematics): a teacher jumps
   * straight to ∂f/∂W1. */
  function addJumps() {
    const sections = el.output.querySelectorAll("details[id]");
    if (sections.length < 2) return;
    const nav = document.createElement("nav");
    nav.className = "jumps";
    nav.dataset.testid = "jumps";
    nav.setAttribute("aria-label", t("jump_label"));
    for (const d of sections) {
      const title = d.querySelector("summary .title math") || d.querySelector("summary math");
      if (!title) continue;
      const a = document.createElement("a");
      a.href = `#${d.id}`;
      a.appendChild(title.cloneNode(true));
      nav.appendChild(a);
    }
    el.output.insertBefore(nav, el.output.firstChild);
  }

  function fillCheckWrt(gradients) {
    const current = el.checkWrt.value;
    let names = gradients && typeof gradients === "object" ? Object.keys(gradients) : [];
    if (names.length === 0) names = parseList(el.wrt.value);
    el.checkWrt.textContent = "";
    for (const name of names) {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      el.checkWrt.appendChild(option);
    }
    if (names.includes(current)) el.checkWrt.value = current;
    el.checkWrt.disabled = names.length === 0;
  }

  // ---- copying ---------------------------------------------------------------------------------

  async function copyText(text, done = t("copied")) {
    let ok = false;
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        ok = true;
      } catch (e) {
        ok = false;
      }
    }
    if (!ok) {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "offscreen";
      document.body.appendChild(area);
      const focus = document.activeElement;
      area.select();
      try {
        ok = document.execCommand("copy");
      } catch (e) {
        ok = false;
      }
      area.remove();
      if (focus && focus.focus) focus.focus();
    }
    toast(ok ? done : t("copy_failed"), !ok);
    return ok;
  }

  let toastTimer = 0;
  function toast(text, bad = false) {
    el.toast.textContent = text;
    el.toast.classList.toggle("bad", bad);
    el.toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.toast.hidden = true; }, 2200);
  }

  // ---- downloads -------------------------------------------------------------------------------

  function save(blob, name) {
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    a.className = "offscreen";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    toast(t("saved", { name }));
  }

  /** The text of a /api/derive response for ``format`` (the field of that name, or a generic one). */
  function formatText(data, format) {
    for (const k of [format, "document", "text", "source", "content", "output"]) {
      if (data && typeof data[k] === "string") return data[k];
    }
    return null;
  }

  async function withButton(button, what, job) {
    const input = readInput();
    if (input.empty || input.error) {
      toast(input.error || t("need_input"), true);
      return;
    }
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    setStatus(t("downloading", { what }), "busy");
    try {
      const failure = await job(input);
      if (failure) toast(failure, true);
      setStatus("");
    } catch (e) {
      toast(t("network_error", { detail: e.message }), true);
      setStatus("");
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  async function downloadText(input, format, ext, mime) {
    if (format === "latex" && state.last && state.last.key === JSON.stringify(input.body) &&
        state.last.lang === state.lang && typeof state.last.data.latex === "string") {
      save(new Blob([state.last.data.latex], { type: mime }), `tracegrad-derivation.${ext}`);
      return null;
    }
    const res = await post("/api/derive", { ...input.body, lang: state.lang, format });
    if (!res.ok) return errorMessage(res.data, res.status);
    const text = formatText(res.data, format);
    if (text == null) return `/api/derive format=${format}: no text in the answer`;
    save(new Blob([text], { type: mime }), `tracegrad-derivation.${ext}`);
    return null;
  }

  async function downloadPdf(input) {
    const res = await post("/api/pdf", { ...input.body, lang: state.lang }, undefined, true);
    if (!res.ok) return errorMessage(res.data, res.status);
    if (!res.blob) return "/api/pdf: the answer is not a PDF";
    save(res.blob, `tracegrad-derivation${state.lang === "zh" ? ".zh" : ""}.pdf`);
    return null;
  }

  async function downloadKernel(input) {
    const backend = el.backend.value;
    const res = await post("/api/codegen", { ...input.body, backend });
    if (!res.ok) return errorMessage(res.data, res.status);
    const source = formatText(res.data, "source");
    if (source == null) return "/api/codegen: no source in the answer";
    save(new Blob([source], { type: "text/x-python" }), res.data.filename || `tracegrad_kernel_${backend}.py`);
    return null;
  }

  // ---- check my answer -------------------------------------------------------------------------

  async function check() {
    const input = readInput();
    hideError(el.checkError);
    if (input.empty || input.error) {
      showError(el.checkError, input.error || t("need_input"));
      return;
    }
    const answer = el.answer.value.trim();
    if (!answer) {
      showError(el.checkError, t("need_answer"));
      return;
    }
    const wrt = el.checkWrt.value || parseList(el.wrt.value)[0];
    if (!wrt) {
      showError(el.checkError, t("need_wrt"));
      return;
    }
    if (state.checkController) state.checkController.abort();
    const controller = new AbortController();
    state.checkController = controller;
    const seq = ++state.checkSeq;
    el.checkButton.setAttribute("aria-busy", "true");
    el.checkResult.setAttribute("aria-busy", "true");
    let res;
    try {
      // "variable" names the answer's variable; "wrt" stays what the derivation was asked for
      const body = { ...input.body, answer, syntax: el.syntax.value, variable: wrt, wrt: input.body.wrt ?? wrt,
                     lang: state.lang };
      res = await post("/api/check", body, controller.signal);
    } catch (e) {
      if (e.name !== "AbortError" && seq === state.checkSeq) showError(el.checkError, t("network_error", { detail: e.message }));
      return;
    } finally {
      if (seq === state.checkSeq) {
        el.checkButton.removeAttribute("aria-busy");
        el.checkResult.removeAttribute("aria-busy");
      }
    }
    if (seq !== state.checkSeq) return;
    if (!res.ok) {
      const d = res.data || {};
      // an error in the answer names its column in the answer; one in the program, in the editor's text
      const derived = state.last && state.last.key === JSON.stringify(input.body);
      const message = errorMessage(d, res.status);
      if (d.field === "answer" || (!d.field && derived)) {
        showError(el.checkError, message, el.answer.value.trim(), d.line ?? null, d.column ?? null);
      } else if (d.field === "program" || d.field === "expression") {
        showError(el.checkError, message, input.body.program ?? input.body.expression, d.line ?? null, d.column ?? null);
      } else {
        showError(el.checkError, message);
      }
      el.checkResult.textContent = "";
      state.checked = false;
      return;
    }
    renderCheck(res.data);
    state.checked = true;
  }

  function renderCheck(data) {
    el.checkResult.textContent = "";
    const verdict = document.createElement("p");
    verdict.className = `verdict ${data.correct ? "ok" : "bad"}`;
    verdict.dataset.testid = "check-verdict";
    verdict.textContent = `${data.correct ? "✓" : "✗"} ${t(data.correct ? "correct" : "wrong")}`;
    el.checkResult.appendChild(verdict);
    const body = document.createElement("div");
    body.className = "diagnosis";
    body.dataset.testid = "check-diagnosis";
    if (typeof data.diagnosis_html === "string" && data.diagnosis_html.trim()) {
      body.innerHTML = data.diagnosis_html;
    } else {
      const pre = document.createElement("pre");
      pre.textContent = data.diagnosis_text || "";
      body.appendChild(pre);
    }
    el.checkResult.appendChild(body);
  }

  // ---- grade a write-up ------------------------------------------------------------------------

  async function grade() {
    hideError(el.gradeError);
    const file = el.gradeFile.files && el.gradeFile.files[0];
    if (!file) {
      showError(el.gradeError, t("grade_no_file"));
      return;
    }
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("lang", state.lang);
    const input = readInput();
    if (el.gradeUseProgram.checked && input.mode === "program") form.append("program", input.body.program);
    el.gradeButton.disabled = true;
    el.gradeResult.setAttribute("aria-busy", "true");
    let res;
    try {
      res = await post("/api/grade", form);
    } catch (e) {
      showError(el.gradeError, t("network_error", { detail: e.message }));
      return;
    } finally {
      el.gradeButton.disabled = false;
      el.gradeResult.removeAttribute("aria-busy");
    }
    if (!res.ok) {
      const d = res.data || {};
      showError(el.gradeError, errorMessage(d, res.status), await file.text(), d.line ?? null, d.column ?? null);
      el.gradeResult.textContent = "";
      state.graded = false;
      return;
    }
    const data = res.data;
    el.gradeResult.textContent = "";
    const first = document.createElement("div");
    first.className = "first-wrong";
    first.dataset.testid = "grade-first-wrong";
    const line = data.first_wrong_line;
    if (Number.isInteger(line)) {
      first.classList.add("bad");
      const head = document.createElement("p");
      head.className = "verdict bad";
      head.textContent = `✗ ${t("first_wrong_line", { line })}`;
      const code = document.createElement("pre");
      code.className = "caret";
      code.textContent = ((await file.text()).split("\n")[line - 1] || "").replace(/\t/g, " ");
      first.append(head, code);
    } else {
      const head = document.createElement("p");
      head.className = "verdict ok";
      head.textContent = `✓ ${t("all_lines_hold")}`;
      first.appendChild(head);
    }
    const counts = document.createElement("p");
    counts.className = "counts";
    counts.textContent = reportSummary(data);
    el.gradeResult.append(first, counts);
    el.reportView.textContent = "";
    if (typeof data.report_html === "string" && data.report_html.trim()) {
      el.reportView.innerHTML = data.report_html;
    } else {
      const pre = document.createElement("pre");
      pre.textContent = data.report_text || "";
      el.reportView.appendChild(pre);
    }
    const wrongRow = el.reportView.querySelector("tr.wrong, tr.shape-error");
    if (wrongRow) wrongRow.classList.add("first-wrong-row");
    el.viewTabs.hidden = false;
    showView("report");
    state.graded = true;
  }

  /** The report's own summary line ("3 equations: 2 correct, 1 wrong."), from its text. */
  function reportSummary(data) {
    const lines = String(data.report_text || "").split("\n").map((l) => l.trim());
    return lines.find((l) => /^\d+\s/.test(l) || /^共|^\d+ 个/.test(l)) || "";
  }

  /** The output panel shows the derivation or the write-up's report (tabs once a write-up is graded). */
  function showView(view) {
    const report = view === "report" && !el.viewTabs.hidden;
    el.output.hidden = report;
    el.reportView.hidden = !report;
    if (report) el.welcome.hidden = true;
    else el.welcome.hidden = !(el.output.dataset.state === "empty");
    el.tabDerivation.setAttribute("aria-selected", String(!report));
    el.tabReport.setAttribute("aria-selected", String(report));
    el.tabDerivation.tabIndex = report ? -1 : 0;
    el.tabReport.tabIndex = report ? 0 : -1;
  }

  function showFileName() {
    const file = el.gradeFile.files && el.gradeFile.files[0];
    el.gradeFileName.textContent = file ? file.name : t("no_file");
    el.gradeFileName.classList.toggle("chosen", Boolean(file));
  }

  // ---- examples --------------------------------------------------------------------------------

  async function loadExamples() {
    try {
      const res = await fetch("/api/examples");
      const data = res.ok ? await res.json() : [];
      state.examples = Array.isArray(data) ? data : (Array.isArray(data.examples) ? data.examples : []);
    } catch (e) {
      state.examples = [];
    }
    renderExamples();
  }

  function renderExamples() {
    const select = el.examples;
    const chosen = select.value;
    while (select.options.length > 1) select.remove(1);
    select.options[0].textContent = t("choose_example");
    el.welcomeExamples.textContent = "";
    for (const ex of state.examples) {
      if (!ex || !ex.id) continue;
      const option = document.createElement("option");
      option.value = ex.id;
      option.textContent = exampleTitle(ex);
      select.appendChild(option);
      const chip = document.createElement("button");
      chip.type = "button";
      chip.className = "chip";
      chip.dataset.example = ex.id;
      chip.textContent = exampleTitle(ex);
      chip.addEventListener("click", () => useExample(ex.id));
      el.welcomeExamples.appendChild(chip);
    }
    select.value = chosen;
    select.disabled = state.examples.length === 0;
  }

  function useExample(id) {
    const ex = state.examples.find((e) => e.id === id);
    if (!ex) return;
    if (typeof ex.program === "string") {
      el.editor.value = ex.program;
      el.shapes.value = "";
      el.wrt.value = "";
      el.order.value = "1";
    } else {
      el.editor.value = ex.expression || "";
      el.shapes.value = formatShapes(ex.shapes);
      el.wrt.value = Array.isArray(ex.wrt) ? ex.wrt.join(", ") : (ex.wrt || "");
      el.order.value = ex.kind === "hessian" || ex.order === 2 ? "2" : "1";
    }
    el.examples.value = id;
    el.checkResult.textContent = "";
    hideError(el.checkError);
    derive();
  }

  // ---- language and size -----------------------------------------------------------------------

  function setLanguage(lang, rederive = true) {
    if (lang !== "en" && lang !== "zh") return;
    const changed = lang !== state.lang;
    state.lang = lang;
    try { localStorage.setItem("tracegrad.lang", lang); } catch (e) { /* private mode */ }
    applyLanguage();
    if (!changed || !rederive) return;
    saveHash();
    if (state.last || !el.editorError.hidden) derive();
    if (state.checked) check();
    if (state.graded && el.gradeFile.files && el.gradeFile.files[0]) grade();
  }

  function setZoom(z) {
    state.zoom = Math.min(1.8, Math.max(0.7, Math.round(z * 10) / 10));
    document.documentElement.style.setProperty("--zoom", String(state.zoom));
    try { localStorage.setItem("tracegrad.zoom", String(state.zoom)); } catch (e) { /* private mode */ }
  }

  // ---- start -----------------------------------------------------------------------------------

  function start() {
    const ids = {
      editor: "editor", shapes: "shapes", wrt: "wrt", order: "order", mode: "mode", exprFields: "expr-fields",
      shapesNote: "shapes-note", editorError: "editor-error", errorCaret: "error-caret", examples: "examples",
      output: "output", welcome: "welcome", welcomeExamples: "welcome-examples", status: "status",
      copyAll: "copy-all", share: "share", pdf: "download-pdf", md: "download-md", tex: "download-tex",
      kernel: "download-kernel", backend: "backend", checkWrt: "check-wrt", syntax: "check-syntax",
      answer: "check-answer", checkButton: "check-button", checkError: "check-error", checkResult: "check-result",
      gradeFile: "grade-file", gradeUseProgram: "grade-use-program", gradeButton: "grade-button",
      gradeError: "grade-error", gradeResult: "grade-result", toast: "toast", zoomIn: "zoom-in", zoomOut: "zoom-out",
      reportView: "report-view", gradeFileName: "grade-file-name", viewTabs: "view-tabs", tabDerivation: "tab-derivation", tabReport: "tab-report",
    };
    for (const [k, id] of Object.entries(ids)) el[k] = $(id);

    let lang = "en";
    try { lang = localStorage.getItem("tracegrad.lang") || ""; } catch (e) { lang = ""; }
    if (!lang) lang = (navigator.language || "").toLowerCase().startsWith("zh") ? "zh" : "en";
    state.lang = lang === "zh" ? "zh" : "en";
    try { setZoom(Number(localStorage.getItem("tracegrad.zoom")) || 1); } catch (e) { setZoom(1); }

    const restored = restoreHash();
    applyLanguage();

    el.editor.addEventListener("input", () => { el.examples.value = ""; showView("derivation"); schedule(); });
    el.tabDerivation.addEventListener("click", () => showView("derivation"));
    el.tabReport.addEventListener("click", () => showView("report"));
    el.viewTabs.addEventListener("keydown", (e) => {
      if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
      const report = el.tabDerivation.getAttribute("aria-selected") === "true";
      showView(report ? "report" : "derivation");
      (report ? el.tabReport : el.tabDerivation).focus();
    });
    for (const field of [el.shapes, el.wrt]) field.addEventListener("input", schedule);
    el.order.addEventListener("change", schedule);
    for (const field of [el.editor, el.shapes, el.wrt]) {
      field.addEventListener("keydown", (e) => {
        if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
          e.preventDefault();
          derive();
        }
      });
    }
    el.errorCaret.addEventListener("click", jumpToError);
    el.examples.addEventListener("change", () => { if (el.examples.value) useExample(el.examples.value); });
    for (const button of document.querySelectorAll(".langswitch button")) {
      button.addEventListener("click", () => setLanguage(button.dataset.lang));
    }
    el.copyAll.addEventListener("click", () => {
      if (state.last && typeof state.last.data.latex === "string") copyText(state.last.data.latex);
    });
    el.share.addEventListener("click", () => { saveHash(); copyText(location.href, t("link_copied")); });
    el.output.addEventListener("click", (e) => {
      const button = e.target.closest("button.copy-step");
      if (button) {
        const host = button.closest("[data-latex]");
        if (host) copyText(host.dataset.latex);
        return;
      }
      // the fragment's own links (#summary, #d-W1) scroll inside the page and leave the URL alone
      const link = e.target.closest("a[href^='#']");
      if (link) {
        e.preventDefault();
        const target = el.output.querySelector(`[id="${CSS.escape(decodeURIComponent(link.getAttribute("href").slice(1)))}"]`);
        if (target) {
          if (target.tagName === "DETAILS") target.open = true;
          const still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
          target.scrollIntoView({ behavior: still ? "auto" : "smooth", block: "start" });
        }
      }
    });
    el.pdf.addEventListener("click", () => withButton(el.pdf, "PDF", downloadPdf));
    el.md.addEventListener("click", () => withButton(el.md, "Markdown",
      (input) => downloadText(input, "markdown", "md", "text/markdown;charset=utf-8")));
    el.tex.addEventListener("click", () => withButton(el.tex, "LaTeX",
      (input) => downloadText(input, "latex", "tex", "application/x-tex;charset=utf-8")));
    el.kernel.addEventListener("click", () => withButton(el.kernel, el.backend.value, downloadKernel));
    el.checkButton.addEventListener("click", check);
    el.answer.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        check();
      }
    });
    el.gradeButton.addEventListener("click", grade);
    el.gradeFile.addEventListener("change", () => {   // a file chosen is graded at once
      showFileName();
      if (el.gradeFile.files && el.gradeFile.files[0]) grade();
    });
    el.zoomIn.addEventListener("click", () => setZoom(state.zoom + 0.1));
    el.zoomOut.addEventListener("click", () => setZoom(state.zoom - 0.1));
    window.addEventListener("hashchange", () => { if (restoreHash()) derive(); });
    window.addEventListener("resize", fitEditor);

    loadExamples();
    if (restored && editorText().trim()) derive();
    else showWelcome();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

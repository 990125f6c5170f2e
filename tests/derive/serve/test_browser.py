"""``tracegrad serve`` in a real browser, used as a person uses it.

The app runs under uvicorn on a free loopback port (a background thread); Debian's chromium, headless,
driven by Selenium, opens the page at 1280×800 and: types the seed program into the editor and sees
the ∂f/∂W1 section appear; switches to Chinese and sees Chinese; types a wrong ∂f/∂W1 (σ′(h)
forgotten) into "check my answer" and sees the diagnosis; types a program with an unknown name and
sees the caret under that name's column; opens the link the page wrote into its URL in a fresh load
and gets the same input and derivation back.  The page fetches nothing but this app's own files.

Skipped where chromium, chromedriver or selenium is missing, unless TRACEGRAD_REQUIRE_BROWSER=1
(CI), which makes that a failure.  ``docs/make_screenshot_serve.py`` uses :func:`serving` and
:func:`chromium` for the README's screenshot.
"""
from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import chromium

WIDTH, HEIGHT = 1280, 800

ROOT = Path(__file__).resolve().parents[3]
# the seed network as a person types it: the gallery's program, its comment left out
SEED = "\n".join(line for line in (ROOT / "docs" / "gallery" / "seed.tg").read_text(encoding="utf-8").splitlines()
                 if line.strip() and not line.startswith("#"))

# the seed write-up's ∂f/∂W1 without σ′(h): right up to ∂f/∂H, wrong from ∂f/∂h on
WRONG_W1 = "2*X'*((Ypred - Y)*W2')"

CJK = re.compile(r"[\u4e00-\u9fff]")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(timeout: float = 15.0) -> Iterator[Callable[[], str]]:
    """Starts the app (``derive.serve.app.create_app()``) under uvicorn on a free loopback port, in a
    thread, and yields at once a function that waits until it listens and answers its base URL (the
    caller starts the browser meanwhile); stops it on exit."""
    import uvicorn

    from derive.serve.app import create_app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, name="tracegrad-serve", daemon=True)
    thread.start()

    def ready() -> str:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start on 127.0.0.1:{port}")
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    try:
        yield ready
    finally:
        server.should_exit = True
        thread.join(timeout)


@pytest.fixture(scope="module")
def app_ready():
    with serving() as ready:
        yield ready


@pytest.fixture(scope="module")
def browser(app_ready):      # chromium starts while the app does
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def app_url(app_ready, browser) -> str:
    return app_ready()


def wait(driver: Any, condition: Any, timeout: float = 10.0, what: str = "") -> Any:
    """``condition(driver)`` once it is true; an element replaced while it is looked at is looked up again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05,
                         ignored_exceptions=(StaleElementReferenceException,)).until(condition, what)


def by_testid(driver: Any, testid: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def open_page(driver: Any, url: str) -> None:
    """A fresh load of ``url`` (a change of the hash alone would not reload the page)."""
    driver.get("about:blank")
    driver.get(url)
    wait(driver, lambda d: d.execute_script("return document.readyState") == "complete"
         and by_testid(d, "editor").is_displayed(), what="the page")


def type_into(element: Any, text: str) -> None:
    """Types ``text`` as keys (a line break as Enter) after emptying the field."""
    from selenium.webdriver.common.keys import Keys

    element.click()
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    element.send_keys(text)


def section(driver: Any, name: str) -> Any:
    """The derivation's <details> of ∂f/∂``name`` once the latest input is derived and shown, else None."""
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, f'#output[data-state="ready"] details[id="d-{name}"]')
    return found[0] if found and found[0].is_displayed() else None


def page_text(driver: Any) -> str:
    return driver.execute_script("return document.body.innerText")


def console_errors(driver: Any) -> list:
    """The console's errors, less the network log of the API's intended 4xx answers (bad input typed)."""
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"
            and not re.search(r"/api/\w+ - Failed to load resource: the server responded with a status of 4",
                              e.get("message", ""))]


def test_a_teacher_derives_the_seed_switches_to_chinese_and_checks_an_answer(browser, app_url) -> None:
    start = time.monotonic()
    from selenium.webdriver.support.ui import Select

    browser.get_log("browser")
    open_page(browser, app_url + "/")
    assert by_testid(browser, "welcome").is_displayed()
    assert browser.execute_script("return document.documentElement.lang") == "en"

    # types the seed program: the sections appear, ∂f/∂W1 among them, with its steps and rules
    type_into(by_testid(browser, "editor"), SEED)
    w1 = wait(browser, lambda d: section(d, "W1"), what="the ∂f/∂W1 section")
    assert by_testid(browser, "mode").text == "program"
    assert not by_testid(browser, "editor-error").is_displayed()
    rows = w1.find_elements("css selector", "table.steps tr.result")
    assert rows and "read off the gradient" in rows[-1].text
    ids = browser.execute_script("return Array.from(document.querySelectorAll('#output details'), d => d.id)")
    assert set(ids) >= {"d-W1", "d-b1", "d-W2", "d-b2", "d-h", "d-H", "d-Ypred"}
    assert "Derive" in w1.find_element("css selector", "summary").text
    # each step row offers its LaTeX; the whole derivation's LaTeX and the downloads are enabled
    assert w1.find_elements("css selector", "tr[data-latex] button.copy-step")
    assert by_testid(browser, "copy-all").is_enabled() and by_testid(browser, "download-pdf").is_enabled()
    shared = browser.current_url
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(shared).fragment)["program"] == [SEED]
    # the row of sections above the derivation jumps to ∂f/∂W1, leaving the link alone
    by_testid(browser, "jumps").find_element("css selector", 'a[href="#d-W1"]').click()
    wait(browser, lambda d: 0 <= d.execute_script("return document.getElementById('d-W1')"
                                                   ".getBoundingClientRect().top") < HEIGHT / 2, what="the jump")
    assert browser.current_url == shared

    # switches to Chinese: the interface and the derivation speak Chinese, the link remembers it
    by_testid(browser, "lang-zh").click()
    wait(browser, lambda d: "推导" in (section(d, "W1").text if section(d, "W1") else ""),
         what="the Chinese derivation")
    assert browser.execute_script("return document.documentElement.lang") == "zh"
    text = page_text(browser)
    assert "检查我的答案" in text and "综上所述" in text and "Check my answer" not in text
    assert by_testid(browser, "lang-zh").get_attribute("aria-pressed") == "true"
    assert "lang=zh" in browser.current_url
    assert "单头自注意力" in by_testid(browser, "examples").text   # the examples' titles from the server, in Chinese

    # checks a wrong answer for ∂f/∂W1 and sees the diagnosis, in Chinese
    Select(by_testid(browser, "check-wrt")).select_by_value("W1")
    type_into(by_testid(browser, "check-answer"), WRONG_W1)
    by_testid(browser, "check-button").click()
    verdict = wait(browser, lambda d: d.find_elements("css selector", '[data-testid="check-verdict"]'),
                   what="the verdict")[0]
    assert "bad" in verdict.get_attribute("class") and "不正确" in verdict.text
    diagnosis = by_testid(browser, "check-diagnosis").text
    assert CJK.search(diagnosis) and "W1" in diagnosis.replace("₁", "1"), diagnosis
    assert "∂f/∂h" in diagnosis.replace(" ", "") or "h" in diagnosis, diagnosis

    # only this app's own files were fetched, and nothing went wrong in the console
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
    assert all(r.startswith(app_url + "/") for r in resources), resources
    assert not console_errors(browser)

    # the link the page wrote restores the input in a fresh load
    open_page(browser, shared)
    assert by_testid(browser, "editor").get_attribute("value") == SEED
    wait(browser, lambda d: section(d, "W1"), what="the restored derivation")
    assert time.monotonic() - start < 15


def test_an_error_shows_under_the_editor_at_its_column(browser, app_url) -> None:
    open_page(browser, app_url + "/#lang=en")
    program = "X: n×d; Y: n×k\nparam W: d×k\nZ = X*W\nf = norm2(Y - sigmoidd(Z))^2"   # a misspelt function
    type_into(by_testid(browser, "editor"), program)
    box = wait(browser, lambda d: by_testid(d, "editor-error") if by_testid(d, "editor-error").is_displayed()
               else None, what="the error")
    line, caret = by_testid(browser, "error-caret").text.split("\n")
    column = line.index("sigmoidd") + 1
    assert line == "f = norm2(Y - sigmoidd(Z))^2"
    assert caret.rstrip() == " " * (column - 1) + "^"      # the caret under the misspelt name
    message = by_testid(browser, "error-message").text
    assert "sigmoidd" in message and "line 4" in message and f"column {column}" in message, message
    assert box.get_attribute("role") == "alert"
    assert by_testid(browser, "output").get_attribute("data-state") == "error"
    # clicking the caret puts the cursor at the error; deleting the extra d clears the error and derives
    from selenium.webdriver.common.keys import Keys

    by_testid(browser, "error-caret").click()
    assert browser.execute_script("const e = document.activeElement; return [e.id, e.selectionStart]") == [
        "editor", program.index("sigmoidd")]
    browser.switch_to.active_element.send_keys(Keys.ARROW_RIGHT * 7, Keys.DELETE)
    assert by_testid(browser, "editor").get_attribute("value") == program.replace("sigmoidd", "sigmoid")
    wait(browser, lambda d: section(d, "W"), what="the ∂f/∂W section")
    assert not by_testid(browser, "editor-error").is_displayed()


def test_a_shared_link_restores_an_expression_in_chinese(browser, app_url) -> None:
    fragment = urllib.parse.urlencode({"expression": "norm2(Y - X*W)^2", "shapes": "X: n×d, Y: n×k, W: d×k",
                                       "wrt": "W", "lang": "zh"})
    open_page(browser, f"{app_url}/#{fragment}")
    assert by_testid(browser, "editor").get_attribute("value") == "norm2(Y - X*W)^2"
    assert by_testid(browser, "shapes").get_attribute("value") == "X: n×d, Y: n×k, W: d×k"
    assert by_testid(browser, "wrt").get_attribute("value") == "W"
    assert by_testid(browser, "mode").text == "表达式"
    assert by_testid(browser, "lang-zh").get_attribute("aria-pressed") == "true"
    w = wait(browser, lambda d: d.find_elements("css selector", '#output[data-state="ready"] details'),
             what="the derivation")
    assert "推导" in w[0].text and len(w) == 1
    assert not by_testid(browser, "editor-error").is_displayed()
    # a bracket too many at the end of the expression: the caret under it
    from selenium.webdriver.common.keys import Keys

    by_testid(browser, "editor").send_keys(Keys.END, ")")
    wait(browser, lambda d: by_testid(d, "editor-error").is_displayed(), what="the error")
    line, caret = by_testid(browser, "error-caret").text.split("\n")
    assert line == "norm2(Y - X*W)^2)" and caret.rstrip() == " " * (len(line) - 1) + "^"
    assert f"column {len(line)}" in by_testid(browser, "error-message").text


_LATE_FIRST_ANSWER = """
window.__late = false;
const fetch0 = window.fetch;
let first = true;
window.fetch = (url, init) => {
  if (!(first && String(url).endsWith('/api/derive'))) return fetch0(url, init);
  first = false;   // this one answers a second late and cannot be aborted
  const {signal, ...rest} = init;
  return fetch0(url, rest).then(r => new Promise(ok => setTimeout(() => { window.__late = true; ok(r); }, 1000)));
};
"""


def test_a_late_answer_to_an_older_input_is_ignored(browser, app_url) -> None:
    from selenium.webdriver.common.keys import Keys

    fragment = urllib.parse.urlencode({"expression": "norm2(Y - X*W)^2", "shapes": "X: n×d, Y: n×k, W: d×k",
                                       "wrt": "W", "lang": "en"})
    open_page(browser, f"{app_url}/#{fragment}")
    wait(browser, lambda d: section(d, "W"), what="∂f/∂W")
    browser.execute_script(_LATE_FIRST_ANSWER)
    wrt = by_testid(browser, "wrt")
    wrt.send_keys(Keys.CONTROL, Keys.ENTER)          # asks again for ∂f/∂W: answered late
    wrt.send_keys(", X")
    wrt.send_keys(Keys.CONTROL, Keys.ENTER)          # asks for ∂f/∂W and ∂f/∂X: answered at once
    wait(browser, lambda d: section(d, "X"), what="∂f/∂X")
    wait(browser, lambda d: d.execute_script("return window.__late"), what="the late answer")
    time.sleep(0.1)
    ids = browser.execute_script("return Array.from(document.querySelectorAll('#output details'), d => d.id)")
    assert ids == ["d-W", "d-X"] and section(browser, "X") is not None
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(browser.current_url).fragment)["wrt"] == ["W, X"]


_CAPTURE_DOWNLOADS = """
window.__saved = [];
const create = URL.createObjectURL;
URL.createObjectURL = function (blob) {
  const url = create.call(URL, blob);
  blob.text().then(text => window.__saved.push({type: blob.type, text: text}));
  return url;
};
"""


def test_copy_a_step_and_download_markdown_latex_and_the_kernel(browser, app_url) -> None:
    open_page(browser, f"{app_url}/#" + urllib.parse.urlencode({"program": SEED, "lang": "en"}))
    w1 = wait(browser, lambda d: section(d, "W1"), what="the ∂f/∂W1 section")
    browser.execute_cdp_cmd("Browser.grantPermissions",
                            {"permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    clipboard = "const done = arguments[0]; navigator.clipboard.readText().then(done, e => done('error: ' + e));"
    # one step: the result row ⇒ ∂f/∂W1 = …, its LaTeX as the fragment gives it
    row = w1.find_elements("css selector", "tr.result[data-latex]")[-1]
    row.find_element("css selector", "button.copy-step").click()
    wait(browser, lambda d: by_testid(d, "toast").is_displayed(), what="the toast")
    assert browser.execute_async_script(clipboard) == row.get_attribute("data-latex")
    assert "\\partial W_1}" in row.get_attribute("data-latex") and "\\odot" in row.get_attribute("data-latex")
    # the whole derivation: a LaTeX document
    by_testid(browser, "copy-all").click()
    wait(browser, lambda d: browser.execute_async_script(clipboard).startswith("%"), what="the LaTeX document")
    document = browser.execute_async_script(clipboard)
    assert "\\documentclass" in document and document.rstrip().endswith("\\end{document}")
    # downloads: Markdown, the standalone LaTeX file, the NumPy module
    browser.execute_script(_CAPTURE_DOWNLOADS)
    for testid in ("download-md", "download-tex", "download-kernel"):
        by_testid(browser, testid).click()
        wait(browser, lambda d, testid=testid: by_testid(d, testid).is_enabled(), what=testid)
    saved = wait(browser, lambda d: len(d.execute_script("return window.__saved")) == 3
                 and d.execute_script("return window.__saved"), what="three downloads")
    files = {s["type"].split(";")[0]: s["text"] for s in saved}
    assert files["text/markdown"].startswith("# ") and "W_1" in files["text/markdown"]
    assert files["application/x-tex"] == document
    source = files["text/x-python"]
    compile(source, "tracegrad_kernel.py", "exec")   # a module, and it says what it computes
    assert "import numpy" in source and "W1" in source


# least squares, ∂f/∂W right on line 5 and half of it on line 7 (a factor 2 lost)
WRITEUP = r"""# Least squares

$$f = \|Y - XW\|_F^2$$

$$\frac{\partial f}{\partial W} = 2X^T(XW - Y)$$

$$\frac{\partial f}{\partial W} = X^T(XW - Y)$$
"""


def test_a_teacher_grades_a_write_up_and_sees_the_first_wrong_line(browser, app_url, tmp_path) -> None:
    path = tmp_path / "lsq.md"
    path.write_text(WRITEUP, encoding="utf-8")
    open_page(browser, app_url + "/#lang=en")
    by_testid(browser, "grade-file").send_keys(str(path))      # a file chosen is graded at once
    assert by_testid(browser, "grade-file-name").text == "lsq.md"
    first = wait(browser, lambda d: d.find_elements("css selector", '[data-testid="grade-first-wrong"]'),
                 what="the grade")[0]
    assert "First wrong line: 7" in first.text and "X^T(XW - Y)$$" in first.text
    report = by_testid(browser, "grade-report")
    assert report.is_displayed() and by_testid(browser, "output").get_attribute("hidden") is not None
    assert by_testid(browser, "tab-report").get_attribute("aria-selected") == "true"
    wrong = report.find_element("css selector", "tr.first-wrong-row")
    assert wrong.find_element("css selector", "td").text == "7" and "1/2" in wrong.text
    by_testid(browser, "tab-derivation").click()
    assert by_testid(browser, "output").get_attribute("hidden") is None and not report.is_displayed()
    assert by_testid(browser, "welcome").is_displayed()   # nothing typed yet: the welcome is back

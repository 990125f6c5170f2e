"""Makes docs/screenshot-serve.png: the page of ``tracegrad serve`` in chromium (1280×1000), the seed
program typed into the editor, its derivation at ∂f/∂h (the σ′ step), and a wrong ∂f/∂W1 checked.

    PYTHONPATH=. python docs/make_screenshot_serve.py [OUT.png]

It starts the app on a free loopback port and drives Debian's chromium through Selenium, with the
helpers of the browser test (tests/derive/serve/test_browser.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.derive.serve.test_browser import (  # noqa: E402
    SEED, WRONG_W1, by_testid, chromium, open_page, section, serving, type_into, wait,
)

_SCENE = """
const panel = document.getElementById('output-panel'), h = document.getElementById('d-h');
panel.scrollTop = h.offsetTop - panel.querySelector('.toolbar').offsetHeight - 12;
document.activeElement.blur();
"""


def main(out: Path) -> None:
    from selenium.webdriver.support.ui import Select

    with serving() as ready, chromium(1280, 1000) as browser:
        url = ready()
        open_page(browser, url + "/#lang=en")
        type_into(by_testid(browser, "editor"), SEED)
        wait(browser, lambda d: section(d, "W1"), what="the derivation")
        Select(by_testid(browser, "check-wrt")).select_by_value("W1")
        type_into(by_testid(browser, "check-answer"), WRONG_W1)
        by_testid(browser, "check-button").click()
        wait(browser, lambda d: d.find_elements("css selector", '[data-testid="check-verdict"]'), what="the verdict")
        browser.execute_script(_SCENE)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not browser.save_screenshot(str(out)):
            raise SystemExit(f"could not write {out}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshot-serve.png")

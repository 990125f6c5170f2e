"""Debian's chromium, headless, through Selenium: the one launcher of the browser tests
(tests/derive/render/test_html.py, tests/derive/serve/test_browser.py) and docs/make_screenshot_serve.py."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _executable(path: str, name: str) -> str | None:
    return path if os.access(path, os.X_OK) else shutil.which(name)


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 800) -> Iterator[Any]:
    """Debian's chromium, headless, through Selenium, with a fresh profile and a width×height viewport;
    skips (fails under TRACEGRAD_REQUIRE_BROWSER=1) where chromium, chromedriver or selenium is missing."""
    missing = pytest.fail if os.environ.get("TRACEGRAD_REQUIRE_BROWSER") == "1" else pytest.skip
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium is not installed (pip install selenium)")
    binary, driver_path = _executable(CHROMIUM, "chromium"), _executable(CHROMEDRIVER, "chromedriver")
    if binary is None or driver_path is None:
        missing("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="tracegrad-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
                 "--disable-extensions", "--force-device-scale-factor=1", "--hide-scrollbars",
                 "--lang=en-US", f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.set_page_load_timeout(20)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)

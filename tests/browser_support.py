"""Headless Chromium (Debian's chromium and chromium-driver) driven by Selenium.

No browser is downloaded: the system's /usr/bin/chromium and /usr/bin/chromedriver
are used, and the tests skip, saying why, when they are not installed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1000")


def chromium_or_skip():
    """A new headless Chromium, or a skip that says what is missing."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.skip(f"browser tests need Debian's chromium and chromium-driver ({', '.join(missing)} "
                    "not found): apt-get install chromium chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("browser tests need selenium (pip install -e '.[test]')")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not fetch anything
    profile = tempfile.mkdtemp(prefix="monitor-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    driver.monitor_profile = profile
    return driver


def close(driver) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(driver.monitor_profile, ignore_errors=True)


def screenshot(driver, folder: Path, name: str, *, width: int = 1280) -> Path:
    """The whole page as a PNG in FOLDER (the test's temporary folder)."""
    height = driver.execute_script("return Math.max(document.body.scrollHeight, 600)")
    driver.set_window_size(width, min(int(height) + 120, 4000))
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def find(driver, by: str, value: str, timeout: float = 15):
    """The element, waiting for the page a click started to load (an event, not a sleep)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(expected_conditions.presence_of_element_located((by, value)))

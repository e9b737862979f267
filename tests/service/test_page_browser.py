"""The search page in a real browser (Playwright driving Debian's chromium) against a real server.

Types a query, clicks a video hit's moment and checks that the player jumped to the moment's start;
a screenshot is saved under tests/artifacts/ (ignored by git). Skipped without chromium or Playwright,
except under CI=true, where it must run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import CHROMIUM, require_browser, start_server
from tests.service.test_moments_api import moments_root  # noqa: F401  (module fixture: bundle + stand-in head)

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = pytest.mark.e2e


def test_clicking_a_moment_seeks_the_player(moments_root: Path) -> None:  # noqa: F811
    require_browser()
    from playwright.sync_api import sync_playwright

    proc, url = start_server(moments_root)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(url)
            page.fill("#q", "a red 7 moves left")
            page.select_option("#m", "video")
            page.press("#q", "Enter")
            page.wait_for_selector(".hit .moment", timeout=30_000)
            card = page.locator(".hit").nth(1)  # not the first card: the seek must reach the card's own player
            moment = card.locator(".moment").last
            start = float(moment.get_attribute("data-start") or "nan")
            assert start > 0, "pick a moment that does not start at 0 s, or a seek could not be told from none"
            moment.click()
            page.wait_for_function(
                """([card, start]) => {
                    const v = document.querySelectorAll('.hit')[card].querySelector('video');
                    const t = v.currentTime;
                    return v.readyState >= 1 && !v.seeking && t >= start - 0.05 && t < start + 1;
                }""",
                arg=[1, start],
                timeout=15_000,
            )
            others = page.evaluate("[...document.querySelectorAll('.hit video')].map(v => v.currentTime)")
            assert others[0] == 0  # the seek moved the clicked card's player, not another one
            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "search_page_moments.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")  # noqa: T201
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)

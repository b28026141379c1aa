"""The HTML report in a real browser: images load, no console errors, nothing fetched."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def test_browser_check_catches_broken_pages(open_in_chromium, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The harness itself must see a broken image and a console error, or a pass means nothing."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><img alt="x" src="data:image/png;base64,AAAA">'
                    '<script>console.error("boom")</script></body></html>', encoding="utf-8")
    seen = open_in_chromium(page, "broken")
    assert any("console.error" in e for e in seen["errors"])
    assert seen["images"] and seen["images"][0]["width"] == 0


def test_report_renders_in_chromium(open_in_chromium, example_comparison, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, out = example_comparison
    seen = open_in_chromium(out / "report.html", "report")
    assert seen["errors"] == []
    assert len(seen["images"]) == 3
    for image in seen["images"]:
        assert image["complete"] and image["width"] > 100 and image["height"] > 100, image["alt"]
    assert all(url.startswith(("file:", "data:")) for url in seen["requests"]), seen["requests"]
    assert "local use only" in seen["text"]
    assert "SMALL GROUP" in seen["text"]
    screenshot = seen["screenshot"]
    assert screenshot.stat().st_size > 20_000
    keep = Path(__file__).parent / ".screenshots"
    if keep.is_dir():  # opt-in: mkdir tests/compare/.screenshots to keep a copy for looking at
        shutil.copy(screenshot, keep / "report.png")


@pytest.mark.parametrize("name", ["report.html"])
def test_report_has_no_external_urls(example_comparison, name: str) -> None:  # type: ignore[no-untyped-def]
    _, out = example_comparison
    html = (out / name).read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower()
    assert "Content-Security-Policy" in html

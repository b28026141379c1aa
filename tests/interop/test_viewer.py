"""Transcript viewer: self-contained, escaped pages, checked in headless Chromium."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import html as lxml_html

from pipeline.corpus_io import read_sentences
from pipeline.interop.viewer import STANCE_TINTS, page_name, write_viewer

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1280, 1600


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not CHROMIUM.is_file() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip("/usr/bin/chromium is missing: install the Debian package `chromium` to run the browser check")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               f"--window-size={WIDTH},{HEIGHT}", "--hide-scrollbars", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_pages_are_self_contained_and_escaped(tricky_corpus: Path, tmp_path: Path) -> None:
    summary = write_viewer(tricky_corpus, tmp_path / "view")
    assert [p.name for p in summary.pages] == ["tricky.html"] and summary.index.name == "index.html"
    page = summary.pages[0].read_text(encoding="utf-8")
    assert "<script" not in page.lower() and "http://" not in page and "https://" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "nurse &amp; &lt;midwife&gt;" in page
    tree = lxml_html.fromstring(page)
    tagged = [r for r in read_sentences(tricky_corpus) if r.tagged]
    spans = tree.xpath('//span[@data-stance]')
    assert [s.get("id") for s in spans] == [r.sentence_id for r in tagged]
    for span, row in zip(spans, tagged):
        assert span.text_content() == row.text
        assert span.get("data-stance") == row.stance
        title = span.get("title")
        assert f"stance: {row.stance}" in title and "affect focus:" in title
        assert f"{row.stance_probs[row.stance]:.2f}" in title  # type: ignore[index]
    assert page_name("a/b c") != page_name("a_b_c") and page_name("index") != "index.html"


def test_viewer_renders_in_headless_chromium(corpus: Path, tricky_corpus: Path, tmp_path: Path) -> None:
    view = tmp_path / "view"
    write_viewer(corpus, view)
    write_viewer(tricky_corpus, view, only={"tricky"})
    page = view / "tricky.html"
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    tree = lxml_html.fromstring(dom.stdout)
    assert not tree.xpath("//script")  # the transcript's <script> stayed text
    assert "<script>alert('x')</script>" in tree.text_content()
    tagged = [r for r in read_sentences(tricky_corpus) if r.tagged]
    assert len(tree.xpath('//span[@data-stance]')) == len(tagged)

    shot = tmp_path / "int01.png"
    result = chromium(tmp_path, f"--screenshot={shot}", (view / "int01_psychiatrist.html").as_uri())
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    image_module = pytest.importorskip("PIL.Image", reason="Pillow is needed to inspect the screenshot")
    with image_module.open(shot) as image:
        assert image.size == (WIDTH, HEIGHT)
        colours = {colour for _, colour in image.convert("RGB").getcolors(maxcolors=1 << 20) or []}
    assert len(colours) > 50  # text, chips and tints, not a blank page
    tints = {tuple(int(t[i:i + 2], 16) for i in (1, 3, 5)) for t in STANCE_TINTS.values()}
    assert len(tints & colours) >= 2  # sentences are painted in at least two stance colours
    keep = Path(__file__).parent / ".screenshots"
    if keep.is_dir():  # opt-in: mkdir tests/interop/.screenshots to keep a copy for looking at
        shutil.copy(shot, keep / "viewer.png")

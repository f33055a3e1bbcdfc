"""The web page as a person uses it, in a real headless browser: Debian's chromium driven by
Playwright (never a downloaded browser). A missing chromium fails this module; it never skips."""

from __future__ import annotations

import base64
import os
import shutil

import pytest
from playwright.sync_api import expect, sync_playwright

from serve_fixtures import start_service

CHROMIUM = os.environ.get("AVSEARCH_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def served(tmp_path_factory, indexed_template):
    tmp = tmp_path_factory.mktemp("serve-page")
    (tmp / "incoming").mkdir()
    service, library = start_service(tmp, indexed_template, roots=[tmp / "incoming"])
    yield service, library, tmp / "incoming"
    service.stop()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no chromium at {CHROMIUM}: install Debian's (apt-get install -y chromium) or set AVSEARCH_CHROMIUM")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, served):
    service, _, _ = served
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(service.page_url)  # the link `avsearch serve` prints: it sets the token cookie
    expect(page.locator("#status")).to_contain_text("5 files")
    yield page
    context.close()


def hits_of(page):
    return page.locator("#hits > li")


def search(page, text):
    page.fill("#q", text)
    page.press("#q", "Enter")
    expect(page.locator("#message")).to_contain_text("hits for")


def test_the_page_comes_with_the_token_link_and_shows_the_index(page, served):
    service, _, _ = served
    assert page.url == service.url + "/"  # the token left the address bar
    expect(page.locator("#status")).to_contain_text("12 clips")
    expect(page.locator("#status")).to_contain_text("1 failed")


def test_type_a_query_see_hits_and_play_one_within_its_range(page):
    page.uncheck("#merge")  # each 10 s clip its own hit: street.mp4 has one from 10 s
    search(page, "a busy street")
    assert hits_of(page).count() == 12
    later = page.locator("#hits > li", has_text="street.mp4").filter(has_text="0:10–0:12").first
    expect(later.locator("img")).to_have_js_property("complete", True)
    later.locator(".play").click()
    expect(page.locator("#player")).to_be_visible()
    page.wait_for_function("() => { const v = document.querySelector('#video'); return v.currentTime >= 10 && !v.paused; }",
                           timeout=20_000)
    t = page.evaluate("document.querySelector('#video').currentTime")
    assert 10 <= t <= 12.1
    # it stops at the end of the hit's range (the file goes on past it in other uses)
    page.wait_for_function("() => document.querySelector('#video').paused", timeout=20_000)
    assert 10 <= page.evaluate("document.querySelector('#video').currentTime") <= 12.6


def test_drop_a_sound_file_and_see_its_hits(page, served):
    _, library, _ = served
    data = base64.b64encode((library / "speech.wav").read_bytes()).decode()
    transfer = page.evaluate_handle("""([b64, name]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, { type: "audio/wav" }));
        return dt;
    }""", [data, "speech.wav"])
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    expect(page.locator("#message")).to_contain_text("hits by speech.wav")
    expect(hits_of(page).first.locator(".name")).to_have_text("speech.wav")
    # sound only: the thumbnail is its spectrogram, a picture that loads (not the ♪ stand-in)
    picture = hits_of(page).first.locator(".thumb img")
    expect(picture).to_have_count(1)
    page.wait_for_function("img => img.complete && img.naturalWidth === 320", arg=picture.element_handle())


def test_choose_a_video_file_read_as_pictures(page, served):
    _, library, _ = served
    page.select_option("#mediaview", "video")
    page.select_option("#views", "video")
    page.set_input_files("#file", str(library / "silent.mp4"))
    expect(page.locator("#message")).to_contain_text("hits by silent.mp4")
    expect(hits_of(page).first.locator(".name")).to_have_text("silent.mp4")
    assert set(hits_of(page).locator(".view").all_inner_texts()) == {"video"}


def test_more_like_this(page):
    search(page, "birdsong")
    first = hits_of(page).first
    liked = first.get_attribute("data-clip-id")
    first.locator(".like").click()
    expect(page.locator("#message")).to_contain_text("hits like")
    ids = [li.get_attribute("data-clip-id") for li in hits_of(page).all()]
    assert ids and liked not in ids


def test_keyboard_only(page):
    page.keyboard.press("Tab")  # away from the search box, then '/' brings it back
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("a tone")
    page.keyboard.press("Enter")
    expect(page.locator("#message")).to_contain_text("hits for")
    for _ in range(40):  # Tab reaches the hits
        page.keyboard.press("Tab")
        if page.evaluate("!!document.activeElement.closest('#hits')"):
            break
    assert page.evaluate("document.activeElement.closest('#hits > li').dataset.index") == "0"
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.closest('#hits > li').dataset.index") == "1"
    per_row = page.evaluate("""() => { const tops = [...document.querySelectorAll('#hits > li')]
        .map((li) => li.getBoundingClientRect().top); return tops.filter((t) => t === tops[0]).length; }""")
    count = hits_of(page).count()
    assert 1 < per_row < count  # the grid has more than one row here
    page.keyboard.press("ArrowDown")  # one row down: the same column
    assert page.evaluate("document.activeElement.closest('#hits > li').dataset.index") == str(min(count - 1, 1 + per_row))
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    expect(page.locator("#player")).to_be_visible()
    expect(hits_of(page).nth(1)).to_have_class("hit playing")
    page.keyboard.press("Escape")
    expect(page.locator("#player")).to_be_hidden()
    assert page.evaluate("document.activeElement.closest('#hits > li').dataset.index") == "1"


def test_index_a_folder_from_the_page(page, served, library_template):
    service, _, incoming = served
    (incoming / "tapes").mkdir()
    shutil.copy(library_template / "birds.flac", incoming / "tapes" / "birds-again.flac")
    os.symlink(library_template, incoming / "tapes" / "elsewhere")  # out of the service's root: not followed
    page.click("#indexing summary")
    page.fill("#folder", "tapes")
    page.click("#jobform button")
    # a copy of an indexed file: recorded as another path of that content, not embedded again
    expect(page.locator("#jobstate")).to_contain_text(
        "done: 0 indexed, 1 copy of indexed content, 1 skipped (a symlink out of the roots), 0 failed",
        timeout=120_000)
    search(page, "birds")
    expect(page.locator("#hits .name", has_text="birds-again.flac")).to_have_count(0)
    birds = page.locator("#hits li", has=page.locator(".name", has_text="birds.flac")).first
    expect(birds.locator(".also")).to_have_text("also at: birds-again.flac")

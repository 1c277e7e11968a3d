"""A real headless Chromium (Debian's /usr/bin/chromium, driven by playwright) using the chat like a person.

Never skipped: CI installs chromium and a CJK font (scripts/test.sh). Saves docs/screenshot.png.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from fixtures.helpers import CORPUS, WENSHUI, WENSHUI_Q, corpus_files, evidence_through
from talentbot.sentences import split_sentences
from talentbot.web import EXAMPLES

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
Q1 = WENSHUI_Q
FIGURE = WENSHUI["a"][0]  # what Q1 asks for (eval/qa_shanxi.jsonl)
PASSAGE = evidence_through(WENSHUI)  # the cited sentence, up to the figure
# The README's picture is refreshed with TALENTBOT_SCREENSHOT=docs/screenshot.png; otherwise it goes to a temp file.
SCREENSHOT = Path(os.environ.get("TALENTBOT_SCREENSHOT") or tempfile.mkstemp(suffix=".png")[1])
TIMEOUT = 20_000


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """A fresh tab on the chat; requests leaving the machine are blocked and recorded."""
    ctx = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    ctx.set_default_timeout(TIMEOUT)
    outside: list[str] = []

    def only_local(route):
        if re.match(
            r"https?://(127\.0\.0\.1|localhost)[:/]", route.request.url
        ) or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    ctx.route("**/*", only_local)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.outside, pg.errors = outside, errors
    pg.goto(server.url)
    pg.wait_for_selector("#tb-question textarea")
    yield pg
    ctx.close()


def ask(page, question: str) -> None:
    n = page.locator("#tb-chat [data-testid='bot']").count()
    page.fill("#tb-question textarea", question)
    page.click("#tb-send")
    expect(page.locator("#tb-chat [data-testid='bot']")).to_have_count(n + 1, timeout=TIMEOUT)
    # cleared once the answer is final
    expect(page.locator("#tb-question textarea")).to_have_value("", timeout=TIMEOUT)


def last_bot(page):
    return page.locator("#tb-chat [data-testid='bot']").last


def test_ask_read_the_cited_passage_and_follow_up(page):
    # first load: the example questions are there to click
    for q in EXAMPLES[:2]:
        expect(page.get_by_text(q, exact=True).first).to_be_visible()
    expect(page.locator("#tb-sources")).to_contain_text("Cited passages appear here")

    ask(page, Q1)
    expect(last_bot(page)).to_contain_text(FIGURE)
    card = page.locator("#tb-sources #cite-1-1")
    expect(card).to_be_visible()
    expect(card).to_contain_text(PASSAGE)
    expect(card).to_contain_text("人民日报客户端山西频道")
    expect(card).to_contain_text("2024-03-28")
    expect(card.locator("mark")).to_contain_text(PASSAGE)  # the cited sentence is highlighted ...
    passage = card.locator(".tb-text")
    assert len(passage.inner_text()) > len(card.locator("mark").inner_text()) + 20  # ... inside its passage

    link = page.locator(
        "#tb-chat a[href='#cite-1-1']"
    ).first  # the direct clause and its sentence both cite [1]
    expect(link).to_have_text("[1]")
    link.click()
    expect(page).to_have_url(re.compile(r"#cite-1-1$"))
    assert card.evaluate("e => e.matches(':target')")
    expect(card).to_be_in_viewport()
    assert len(page.context.pages) == 1  # the citation opened no new tab

    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 20_000

    # a follow-up that only makes sense with the first turn ("它" = 盛达威公司)
    ask(page, "那它成立了什么？")
    expect(last_bot(page)).to_contain_text("技术中心")
    expect(page.locator("#tb-sources #cite-2-1")).to_contain_text("成立技术中心")
    # the first answer's [1] still leads to its own card
    page.locator("#tb-chat a[href='#cite-1-1']").first.click()
    expect(page.locator("#tb-sources #cite-1-1")).to_be_in_viewport()
    expect(page.locator("#tb-sources #cite-1-1")).to_contain_text(PASSAGE)
    assert page.errors == []


def test_example_question_can_be_asked(page):
    page.get_by_text(EXAMPLES[0], exact=True).first.click()
    expect(page.locator("#tb-question textarea")).to_have_value(EXAMPLES[0])
    page.click("#tb-send")  # the first example asks for Beijing's fine for unlicensed talent agencies
    expect(last_bot(page)).to_contain_text("据《北京市人才市场管理条例》")
    expect(last_bot(page)).to_contain_text("5万元")
    expect(page.locator("#tb-sources #cite-1-1")).to_contain_text("无《许可证》从事人才市场中介服务活动")


def test_no_answer_looks_different(page):
    ask(page, Q1)
    answered = page.locator("#tb-sources .tb-cite").first
    expect(answered).to_be_visible()
    ask(page, "火星上的人才政策是什么？")
    expect(last_bot(page)).to_contain_text("未找到答案")
    expect(last_bot(page).locator("strong")).to_contain_text("No answer in the documents")
    none = page.locator("#tb-sources .tb-none")
    expect(none).to_be_visible()
    expect(none).to_contain_text("No passage in the documents answers this question")
    style = "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).borderStyle]"
    assert none.evaluate(style) != page.locator("#tb-sources .tb-cite").first.evaluate(style)
    assert last_bot(page).locator("a[href^='#cite-']").count() == 0


def test_hostile_question_renders_inert(page):
    hostile = (
        '人才政策<img src="http://evil.example/x.png" onerror="window.__xss=1">'
        "![t](http://evil.example/t.png)<script>window.__xss=2</script>"
    )
    ask(page, hostile)
    user = page.locator("#tb-chat [data-testid='user']").last
    expect(user).to_contain_text('<img src="http://evil.example/x.png"')  # shown as text
    assert page.evaluate("window.__xss") is None
    assert page.locator("#tb-chat img[src*='evil'], #tb-sources img").count() == 0
    assert not [u for u in page.outside if "evil.example" in u]


def test_articles_tab_lists_the_indexed_articles(page):
    page.get_by_role("tab", name="文章 Articles").click()
    table = page.locator("#tb-articles")
    expect(table).to_contain_text("河南省人才流动条例")
    expect(table).to_contain_text("郑洛新国家自主创新示范区条例")
    # the grid renders rows lazily; its row count (header + articles) is the reliable measure
    expect(table.get_by_role("grid")).to_have_attribute("aria-rowcount", "12")
    expect(table).to_contain_text("henan-rencai-liudong-tiaoli.md")


# A comparison of two regulations' start dates, and a number question whose passage says more than its answer
# (both written for these tests). What the page must show is taken from the server's own bot.
COMPARE_Q = "北京和上海的人才条例哪个更早施行？"
NUMBER_Q = "在北京开办人才市场中介服务机构需要多少名专职工作人员？"


def test_comparison_renders_a_table_with_a_row_per_part(page, server):
    expected = server.bot.ask(COMPARE_Q)
    assert len(expected.parts) >= 2, expected.text  # the question has two parts, each answered on its own
    ask(page, COMPARE_Q)
    table = last_bot(page).locator("table")
    expect(table).to_be_visible()
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(len(expected.parts))
    for i, part in enumerate(expected.parts):
        row = rows.nth(i)
        expect(row).to_contain_text(part["label"])
        expect(row).to_contain_text(part["answer"])
        link = row.locator(f"a[href='#cite-1-{part['n']}']")
        expect(link).to_have_text(f"[{part['n']}]")
    assert {p["label"] for p in expected.parts} == {"北京", "上海"}  # the places the question names
    rows.nth(1).locator("a").click()  # the table's [n] leads to its passage's card
    expect(page.locator(f"#tb-sources #cite-1-{expected.parts[1]['n']}")).to_be_in_viewport()


def test_an_active_filter_stays_visible_with_the_accordion_closed(page):
    accordion = page.locator("#tb-filters")
    expect(page.locator("#tb-filter-line")).to_have_count(0)  # no filter, no line
    accordion.locator("button.label-wrap").click()
    region = page.get_by_label("地区 Region")
    region.click()
    region.fill("河南")
    region.press("Enter")
    page.get_by_label("起始日期 From (YYYY-MM-DD)").fill("2090-01-01")  # no article is that recent
    accordion.locator("button.label-wrap").click()  # closed again
    expect(region).to_be_hidden()
    line = page.locator("#tb-filter-line")
    expect(line).to_be_visible()
    expect(line).to_contain_text("地区=河南")
    expect(line).to_contain_text("2090-01-01")
    # a refusal under the filter says so
    ask(page, Q1)
    expect(last_bot(page)).to_contain_text("未找到答案")
    expect(last_bot(page)).to_contain_text("地区=河南")
    expect(last_bot(page)).to_contain_text("clear the filters")
    # one click clears them: the line goes, the same question is answered
    page.click("#tb-clear-filters")
    expect(line).to_have_count(0)
    accordion.locator("button.label-wrap").click()
    expect(region).to_have_value("（全部）")
    expect(page.get_by_label("起始日期 From (YYYY-MM-DD)")).to_have_value("")
    ask(page, Q1)
    expect(last_bot(page)).to_contain_text(FIGURE)


def test_articles_tab_shows_the_count_and_opens_an_article(page):
    doc = "henan-rencai-liudong-tiaoli.md"
    source = (CORPUS / doc).read_text(encoding="utf-8").splitlines()
    first = next(line for line in source if line.startswith("第一条"))
    last = [line for line in source if re.match(r"第.{1,4}条 ", line)][-1]
    page.get_by_role("tab", name="文章 Articles").click()
    expect(page.locator("#tb-article-count")).to_contain_text(f"已索引 {len(corpus_files())} 篇文章")
    reader = page.locator("#tb-reader")
    expect(reader).to_contain_text("Select a row")
    page.locator("#tb-articles").get_by_text(doc).click()
    expect(reader).to_contain_text("河南省人才流动条例")
    expect(reader).to_contain_text(first)
    expect(reader).to_contain_text(last)  # the whole article, to its last provision
    assert reader.locator(".tb-chapter").count() > 1
    assert page.errors == []


def test_mobile_layout_keeps_the_sources_right_after_the_chat(browser, server):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True)
    ctx.set_default_timeout(TIMEOUT)
    try:
        pg = ctx.new_page()
        pg.goto(server.url)
        ask(pg, Q1)
        expect(pg.locator("#tb-sources #cite-1-1")).to_be_visible()
        chat, sources = pg.locator("#tb-chat").bounding_box(), pg.locator("#tb-sources").bounding_box()
        box, examples = pg.locator("#tb-question").bounding_box(), pg.locator("#tb-filters").bounding_box()
        assert chat["y"] + chat["height"] <= sources["y"] < chat["y"] + chat["height"] + 80  # right under it
        assert sources["y"] + sources["height"] <= box["y"] < examples["y"]  # then the question box, filters
        assert abs(sources["x"] - chat["x"]) < 2  # one column
        assert sources["height"] <= 0.5 * 844 + 1  # a bounded panel: the question box stays near
    finally:
        ctx.close()


def test_desktop_layout_keeps_the_sources_beside_the_chat(page):
    chat, sources = page.locator("#tb-chat").bounding_box(), page.locator("#tb-sources").bounding_box()
    assert sources["x"] >= chat["x"] + chat["width"]
    assert sources["y"] < chat["y"] + chat["height"]


def test_an_error_is_said_in_the_chat_and_leaves_no_overlay(page):
    page.fill("#tb-question textarea", "😀🎉🚀")
    page.click("#tb-send")
    bubble = last_bot(page)
    expect(bubble).to_contain_text("出错了")
    expect(bubble).to_contain_text("没有文字")  # Chinese ...
    expect(bubble).to_contain_text("no words")  # ... and English
    page.wait_for_timeout(1000)  # an overlay or toast would be up by now
    assert page.locator("[data-testid='status-tracker'] .error:visible").count() == 0
    assert page.locator("[data-testid='toast-body']:visible, .toast-body:visible").count() == 0
    # nothing lies over the chat or the question box: the topmost element at their centres is their own
    for sel in ("#tb-chat", "#tb-question textarea"):
        covered = page.locator(sel).evaluate(
            """e => { const r = e.getBoundingClientRect();
                      const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
                      return !(e === top || e.contains(top)); }"""
        )
        assert not covered, sel
    expect(page.locator("#tb-question textarea")).to_have_value("😀🎉🚀")  # kept, to be corrected
    ask(page, Q1)  # and the box is usable
    expect(last_bot(page)).to_contain_text(FIGURE)
    assert page.errors == []


def test_only_the_quoted_sentence_is_highlighted(page, server):
    expected = server.bot.ask(NUMBER_Q)
    cited = expected.citations[0]
    quoted = [q.strip() for q in split_sentences(cited.quote) if q.strip()]
    assert quoted
    assert len(cited.text) > len("".join(quoted)) + 20  # the passage says more than the quote
    ask(page, NUMBER_Q)
    card = page.locator("#tb-sources #cite-1-1")
    expect(card).to_be_visible()
    marks = card.locator("mark")
    assert marks.all_inner_texts() == quoted
    passage = card.locator(".tb-text").inner_text()
    unmarked = passage
    for q in quoted:
        unmarked = unmarked.replace(q, "", 1)
    assert len(unmarked.strip()) > 20  # the rest of the passage is shown, not highlighted
    figures = [h for h in expected.highlights if h in "".join(quoted)]
    assert figures
    expect(marks.locator("strong").first).to_have_text(figures[0])  # the figure, in bold in its sentence

"""The browser chat's adapter (talentbot.web): its functions called directly, then a real Gradio server on a
free loopback port asked through gradio_client and raw HTTP (secure defaults tried from outside)."""

from __future__ import annotations

import html
import http.client
import re
import socket
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, AuthenticationError
from markdown_it import MarkdownIt

from fixtures.helpers import CORPUS, WENSHUI, WENSHUI_Q, corpus_files, evidence_through, free_port, row_for
from talentbot import TalentBot
from talentbot.answer import Answer, Citation
from talentbot.errors import ConfigError
from talentbot.retrieval import Filters
from talentbot.web import (
    ALL,
    EXAMPLES,
    answer_markdown,
    build_app,
    create_app,
    is_loopback,
    launch,
    md_safe,
    sources_html,
    sources_panel,
)
from talentbot.web_articles import article_count, article_rows, open_article, record_for
from talentbot.web_notes import filter_hint, filter_line
from talentbot.web_render import ERROR_HEAD, bot_history, clean_history

Q_WENSHUI = WENSHUI_Q
FIGURE = WENSHUI["a"][0]  # what Q_WENSHUI asks for (eval/qa_shanxi.jsonl)
PASSAGE = evidence_through(WENSHUI)  # the cited sentence, as in the corpus, up to the figure
SHANDONG = row_for("《山东省人才发展促进条例》自哪一天起施行？")
HENAN = row_for("《河南省人才流动条例》自何时起施行？")
SHANGHAI = row_for("When did the Shanghai Regulations on Talent Mobility")
HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)"><a href="javascript:alert(3)">x</a>'


# ----------------------------------------------------------------------------------------------- helpers
class _Tags(HTMLParser):
    """Every (tag, attrs) an HTML string really contains once a browser parses it."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text += data


def rendered(markdown: str) -> str:
    """Markdown rendered the permissive way (raw HTML allowed), to prove the text itself is inert."""
    return MarkdownIt("commonmark", {"html": True}).render(markdown)


def cite(n: int = 1, **kw) -> Citation:
    base = dict(
        n=n,
        title="山西开发区人才政策",
        source="人民日报客户端",
        date="2024-03-28",
        path="/c/a.txt",
        text="其中,公司成立技术中心。2023年,开发区兑现奖励资金40万元。此后继续支持。",
        score=1.0,
        file="a.txt",
        label="第三条",
        page=2,
        quote="2023年,开发区兑现奖励资金40万元。",
    )
    base.update(kw)
    return Citation(**base)


def raw_get(url: str, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """GET ``path`` exactly as written (no client-side normalisation of '..' or %2e)."""
    m = re.match(r"http://([^:/]+):(\d+)", url)
    conn = http.client.HTTPConnection(m.group(1), int(m.group(2)), timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=bool(headers and "Host" in headers))
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def ask(
    client: Client,
    question: str,
    history=None,
    region: str = ALL,
    source: str = ALL,
    date_from: str = "",
    date_to: str = "",
):
    return client.predict(question, history or [], region, source, date_from, date_to, api_name="/chat")


def last_text(history: list) -> str:
    content = history[-1]["content"]
    return content if isinstance(content, str) else "".join(c.get("text", "") for c in content)


def unbold(panel: str) -> str:
    """The Sources panel without the bold that marks the answer's figures inside the quoted sentences."""
    return re.sub("</?strong>", "", panel)


def titles(panel: str) -> list[str]:
    return re.findall(r"class='tb-head'>\[\d+\] (.*?)</div>", panel)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def client(server):
    c = Client(server.url, verbose=False)
    yield c
    c.close()


# ------------------------------------------------------------------------------ UI functions, directly
def test_sources_html_escapes_everything_and_highlights_the_quote():
    c = cite(
        title=HOSTILE,
        source='"><svg onload=alert(4)>',
        text=f"前文{HOSTILE}。2023年,开发区兑现奖励资金40万元。",
        label="<b>第三条</b>",
        file="x.txt",
    )
    out = sources_html(Answer("40万元[1]", False, [c]), turn=3)
    parsed = _Tags(out)
    assert {t for t, _ in parsed.tags} <= {"div", "br", "mark"}, parsed.tags
    assert all(set(a) <= {"class", "id"} for _, a in parsed.tags), parsed.tags
    assert "<script" not in out
    assert "<img" not in out
    assert "<svg" not in out
    assert "<a " not in out
    # the hostile text is still shown, as text
    assert "<script>alert(1)</script>" in parsed.text
    assert 'onerror="alert(2)"' in parsed.text
    assert "javascript:alert(3)" in parsed.text
    assert ("div", {"class": "tb-cite", "id": "cite-3-1"}) in parsed.tags
    assert "<mark>2023年,开发区兑现奖励资金40万元。</mark>" in out
    for meta in ("x.txt", "第2页", "2024-03-28", "&lt;b&gt;第三条&lt;/b&gt;"):
        assert meta in out


def test_sources_html_card_per_citation_and_empty_states():
    out = sources_html(Answer("a[1] b[2]", False, [cite(1), cite(2, title="第二篇")]), turn=7)
    assert re.findall(r"id='(cite-[\d-]+)'", out) == ["cite-7-1", "cite-7-2"]
    assert titles(out) == ["山西开发区人才政策", "第二篇"]
    assert "tb-cite" not in sources_html(None, 0)
    assert "Cited passages appear here" in sources_html(None, 0)


def test_md_safe_kills_images_and_raw_html_but_keeps_markdown():
    hostile = (
        f"**粗体** 与列表\n\n- 一\n- 二\n\n![track](http://evil.example/p.png) ![r][1]\n\n[1]: http://evil.example/q.png\n\n"
        f"{HOSTILE}<iframe src=//evil.example></iframe>"
    )
    html_out = rendered(md_safe(hostile))
    tags = {t for t, _ in _Tags(html_out).tags}
    assert not tags & {"img", "script", "iframe", "svg"}, html_out
    assert "<strong>粗体</strong>" in html_out
    assert "<li>一</li>" in html_out
    assert not re.search(r"<a [^>]*javascript:", html_out)
    assert md_safe("a < b & c > d") == "a &lt; b &amp; c &gt; d"


def test_answer_markdown_links_only_real_citations():
    a = Answer("金额为40万元[1]，另见[2]；[9]不存在。", False, [cite(1), cite(2)])
    md = answer_markdown(a, turn=4)
    assert "[[1]](#cite-4-1)" in md
    assert "[[2]](#cite-4-2)" in md
    assert "[[9]]" not in md
    links = [attrs["href"] for tag, attrs in _Tags(rendered(md)).tags if tag == "a"]
    assert links == ["#cite-4-1", "#cite-4-2"]
    # every link has its card
    ids = re.findall(r"id='(cite-[\d-]+)'", sources_html(a, 4))
    assert [h[1:] for h in links] == ids


def test_answer_markdown_escapes_llm_output_and_shows_warnings():
    a = Answer(
        f"结论[1]{HOSTILE}![x](http://evil.example/x.png)",
        False,
        [cite(1)],
        warnings=["figure <b>99万元</b> is not in the passages"],
    )
    out = rendered(answer_markdown(a, 1))
    assert not {t for t, _ in _Tags(out).tags} & {"img", "script", "iframe", "b"}, out
    assert "<blockquote>" in out
    assert "99万元" in out


def test_no_answer_is_visibly_different():
    na = Answer("资料中没有找到与这个问题相关的内容，无法回答。", True, [])
    ok = Answer("40万元[1]", False, [cite(1)])
    md = answer_markdown(na, 2)
    assert md.startswith("⚠️")
    assert "未找到答案" in md
    assert "No answer" in md
    assert "#cite" not in md
    assert "⚠️" not in answer_markdown(ok, 2)
    panel = sources_html(na, 2)
    assert "tb-none" in panel
    assert "tb-cite" not in panel
    assert "No passage" in panel


def test_a_clarifying_reply_is_neither_an_answer_nor_a_refusal():
    reply = Answer(
        "这个问题比较宽泛，请说明地区。\n可以这样问：\n- 甲市的人才公寓怎么申请？", True, [], clarify=True
    )
    md = answer_markdown(reply, 3)
    assert "未找到答案" not in md
    assert "Please narrow the question down" in md
    assert "<li>甲市的人才公寓怎么申请？</li>" in rendered(md)  # its example questions, as a list
    panel = sources_html(reply, 3)
    assert "tb-none" not in panel
    assert "nothing is cited" in panel


def test_sources_panel_keeps_earlier_turns_newest_first():
    one = sources_html(Answer("a[1]", False, [cite(1)]), 1)
    two = sources_html(Answer("b[1]", False, [cite(1)]), 2)
    panel = sources_panel([(1, "第一问<script>", one), (2, "那博士呢？", two)])
    assert panel.index("cite-2-1") < panel.index("cite-1-1")
    assert "第一问&lt;script&gt;" in panel
    assert "<script>" not in panel
    assert sources_panel([]) == sources_html(None, 0)


def test_bot_history_undoes_display_markup_and_is_capped():
    hist = clean_history(
        [
            {"role": "user", "content": [{"type": "text", "text": "q&lt;1&gt; \\[x\\]"}]},
            {"role": "assistant", "content": "40万元[[1]](#cite-1-1) https&#58;//a.example"},
        ],
        20,
        4000,
    )
    assert bot_history(hist, 12, 2000) == [("user", "q<1> [x]"), ("assistant", "40万元[1] https://a.example")]
    many = clean_history(
        [{"role": "user", "content": "问" * 50_000}, {"role": "assistant", "content": "答"}] * 50, 20, 4000
    )
    assert len(many) == 40
    assert all(len(m["content"]) <= 4000 for m in many)
    capped = bot_history(many, 12, 2000)
    assert len(capped) <= 12
    assert all(len(t) <= 2000 for _, t in capped)


def test_is_loopback():
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "localhost", "::1"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.5", "example.com", ""]))


def _fn(demo, name: str):
    return next(f.fn for f in demo.fns.values() if f.name == name)


def test_chat_function_streams_then_answers_with_citations(corpus_bot):
    demo = build_app(corpus_bot)
    outs = list(_fn(demo, "chat")(Q_WENSHUI, [], ALL, ALL, "", "", []))
    assert len(outs) >= 2  # streamed text first, then the final answer
    history, panel, box, shown = outs[-1]
    assert history[-2] == {"role": "user", "content": Q_WENSHUI}
    assert FIGURE in history[-1]["content"]
    assert "(#cite-1-1)" in history[-1]["content"]
    assert PASSAGE in unbold(panel)
    assert "id='cite-1-1'" in panel
    assert box == ""
    assert [t for t, _, _ in shown] == [1]


def test_page_load_lists_the_articles_and_filter_choices(corpus_bot):
    rows, regions, sources = _fn(build_app(corpus_bot), "on_load")()
    assert len(rows) == len(corpus_files())  # one row per document of corpus/
    assert {r[0] for r in rows} >= {"河南省人才流动条例", "山东省人才发展促进条例"}
    assert all(isinstance(r[4], int) and r[4] > 0 for r in rows)  # chunk counts
    region_values = [c[1] if isinstance(c, tuple) else c for c in regions.choices]
    assert region_values[0] == ALL
    assert "河南" in region_values


def test_sources_html_marks_only_the_quoted_sentences_where_they_stand():
    # the quote's second sentence also occurs before the first: the occurrence after it is the quoted one
    text = "（一）同上。甲条规定每人补贴500元。（一）同上。乙条另有规定。"
    c = cite(text=text, quote="甲条规定每人补贴500元。（一）同上。")
    out = sources_html(Answer("500元[1]", False, [c], highlights=["500元"]), 1)
    marks = re.findall(r"<mark>(.*?)</mark>", out)
    assert [re.sub("</?strong>", "", m) for m in marks] == ["甲条规定每人补贴500元。", "（一）同上。"]
    assert "<strong>500元</strong>" in marks[0]  # the figure that answers, in bold inside its sentence
    body = re.search(r"<div class='tb-text'>(.*?)</div>", out).group(1)
    assert body.startswith("（一）同上。<mark>")  # the earlier copy and the rest of the passage: unmarked
    assert body.endswith("</mark>乙条另有规定。")
    # a quote that is not in the passage, or none (an LLM answer): nothing is marked, the passage is shown
    for quote in ("别处的句子。", ""):
        out = sources_html(Answer("x[1]", False, [cite(text=text, quote=quote)]), 1)
        assert "<mark>" not in out
        assert "乙条另有规定。" in out


def _clicked(demo, elem_id: str) -> gr.EventData:
    """The event data of a click on the page's component ``elem_id`` (an API call has no target)."""
    return gr.EventData(next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id), None)


def test_errors_are_chat_bubbles_in_chinese_and_english(tmp_path):
    demo = build_app(TalentBot(store=tmp_path / "store"))  # nothing indexed
    chat, click = _fn(demo, "chat"), _clicked(demo, "tb-send")
    # a bad question: the error's bubble (no bubble for the question), the question left in its box to fix
    history, _, box, _ = list(chat("😀🎉", [], ALL, ALL, "", "", [], click))[-1]
    assert len(history) == 1
    bubble = history[-1]["content"]
    assert bubble.startswith(ERROR_HEAD)
    assert "没有文字" in bubble
    assert "no words" in bubble
    assert box != ""  # gr.skip(): the box keeps the question
    assert clean_history(history, 20, 4000) == history  # sent back with the next question, the bubble stays
    earlier = [{"role": "user", "content": "问一"}, {"role": "assistant", "content": "答一"}]
    history = list(chat("", earlier, ALL, ALL, "", "", [], click))[-1][0]
    assert history[:2] == earlier  # the answer before is kept, the error's bubble comes after it
    assert "问题是空的" in history[2]["content"]
    # an error while answering: the question's bubble, then the error's in place of the answer
    history = list(chat("人才公寓有哪些支持方式？", earlier, ALL, ALL, "", "", [], click))[-1][0]
    assert [m["role"] for m in history] == ["user", "assistant"] * 2
    assert "还没有索引" in history[-1]["content"]
    assert "nothing is indexed" in history[-1]["content"]
    # the bot never gets a failed turn as history to follow up on
    assert bot_history(history, 12, 2000) == [("user", "问一"), ("assistant", "答一")]
    # an API client (no component of the page triggered the event) gets the error raised, in both languages
    with pytest.raises(gr.Error) as err:
        list(chat("😀🎉", [], ALL, ALL, "", "", []))
    assert "no words" in err.value.message
    assert "没有文字" in err.value.message


def test_filter_line_says_the_filters_in_force():
    assert filter_line(ALL, ALL, "", "") == ""
    assert filter_line(None, None, None, None) == ""
    line = filter_line("广东", ALL, "2020-01-01", " ")
    assert "地区=广东" in line
    assert "2020-01-01 至 …" in line
    assert "来源" not in line
    hostile = filter_line("<script>alert(1)</script>", "x" * 500, "", "2021")
    assert "<script" not in hostile
    assert "&lt;script&gt;" in hostile
    assert "x" * 500 not in hostile  # a long value is cut
    assert "… 至 2021" in hostile
    assert filter_hint(Filters()) == ""
    hint = filter_hint(Filters(region="广东", date_to="2020"))
    assert "地区=广东" in hint
    assert "clear the filters" in hint
    assert hint.lstrip().startswith(">")  # a note under the refusal


def test_filter_events_show_and_clear_the_line(tmp_path):
    demo = build_app(TalentBot(store=tmp_path / "store"))
    row, line = _fn(demo, "show_filters")("河南", ALL, "", "2020-12-31")
    assert row.visible is True
    assert "地区=河南" in line
    row, line = _fn(demo, "show_filters")(ALL, ALL, "", "")
    assert row.visible is False
    assert line == ""


def test_articles_count_and_reader(corpus_bot):
    records = corpus_bot.articles()
    assert f"已索引 {len(corpus_files())} 篇文章" in article_count(records)
    assert "尚未索引" in article_count([])
    doc = HENAN["doc"][0]
    row = next(r for r in article_rows(records) if r[5] == doc)
    assert record_for(records, row).file == doc
    reader = open_article(corpus_bot, row)
    source = (CORPUS / doc).read_text(encoding="utf-8")
    first = next(line for line in source.splitlines() if line.startswith("第一条"))
    text = html.unescape(re.sub(r"<[^>]+>", "", reader))
    assert row[0] in text
    assert text.index(first) < text.index(HENAN["evidence"])  # the whole article, in order
    assert "tb-chapter" in reader  # with its chapter headings
    assert "<script" not in reader
    assert "tb-none" in open_article(corpus_bot, ["不存在", "", "", "", 1, "none.md"])
    assert record_for(records, ["only", "two"]) is None


def test_refusal_under_a_filter_says_so(corpus_bot):
    demo = build_app(corpus_bot)
    history = list(_fn(demo, "chat")(Q_WENSHUI, [], "火星", ALL, "", "", [], _clicked(demo, "tb-send")))[-1][
        0
    ]
    assert "未找到答案" in history[-1]["content"]
    assert "地区=火星" in history[-1]["content"]
    assert "clear the filters" in history[-1]["content"]


# ---------------------------------------------------------------------------------- launch: secure defaults
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5"])
def test_non_loopback_bind_without_auth_is_refused(corpus_store, monkeypatch, host):
    monkeypatch.setenv("TALENTBOT_HOST", host)
    port = free_port()
    bot = TalentBot(store=corpus_store, port=port)
    assert bot.settings.host == host
    with pytest.raises(ConfigError, match="TALENTBOT_AUTH_USER"):
        launch(bot, block=False)
    assert not port_open(port)


def test_non_loopback_bind_with_auth_builds_an_app_that_asks_for_the_password(tmp_path, monkeypatch):
    """With auth set, a non-loopback bind builds (no ConfigError), and the app it builds lets nobody in
    without the password: requested here in-process (nothing is bound), under any Host, as a remote user would."""
    from fastapi.testclient import TestClient

    monkeypatch.setenv("TALENTBOT_HOST", "0.0.0.0")
    monkeypatch.setenv("TALENTBOT_AUTH_USER", "admin")
    monkeypatch.setenv("TALENTBOT_AUTH_PASSWORD", "correct horse")
    app = create_app(TalentBot(store=tmp_path / "store"))
    with TestClient(app, base_url="http://192.0.2.7:7860") as remote:
        for path in ("/config", "/gradio_api/info"):
            assert remote.get(path).status_code == 401, path
        assert remote.post("/login", data={"username": "admin", "password": "wrong"}).status_code == 400
        assert remote.get("/config").status_code == 401
        assert (
            remote.post("/login", data={"username": "admin", "password": "correct horse"}).status_code == 200
        )
        assert remote.get("/config").status_code == 200


def test_server_defaults(server):
    from starlette.routing import Mount

    s = server.bot.settings
    assert s.host == "127.0.0.1"
    assert not s.allow_upload
    assert server.url.startswith("http://127.0.0.1:")
    blocks = next(r.app.blocks for r in create_app(server.bot).routes if isinstance(r, Mount))
    assert blocks.share is False
    assert blocks.ssr_mode is False
    assert blocks.max_file_size == int(s.max_upload_mb * 2**20)
    assert blocks._queue.default_concurrency_limit > 1


def test_auth_from_env_is_enforced(corpus_store, monkeypatch):
    monkeypatch.setenv("TALENTBOT_AUTH_USER", "tester")
    monkeypatch.setenv("TALENTBOT_AUTH_PASSWORD", "s3cret-pw")
    srv = launch(TalentBot(store=corpus_store, port=free_port()), block=False)
    try:
        with pytest.raises(AuthenticationError):
            Client(srv.url, verbose=False)
        with pytest.raises(ValueError, match="Could not login"):  # AuthenticationError is a ValueError too
            Client(srv.url, auth=("tester", "wrong"), verbose=False)
        for path in ("/config", "/gradio_api/file=/etc/passwd", "/gradio_api/info"):
            assert raw_get(srv.url, path)[0] in (401, 403), path
        c = Client(srv.url, auth=("tester", "s3cret-pw"), verbose=False)
        history, panel, _ = ask(c, Q_WENSHUI)
        c.close()
        assert FIGURE in last_text(history)
        assert PASSAGE in unbold(panel)
    finally:
        srv.close()


# ---------------------------------------------------------------------------- the API, via gradio_client
def test_api_lists_the_chat_endpoint(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert "/chat" in endpoints
    assert "/reingest" in endpoints
    assert [p["parameter_name"] for p in endpoints["/chat"]["parameters"]] == [
        "message",
        "history",
        "region",
        "source",
        "date_from",
        "date_to",
    ]


def test_chat_answers_with_the_cited_passage(client):
    history, panel, box = ask(client, Q_WENSHUI)
    answer = last_text(history)
    figure = re.search(r"\d+万元", answer).group(0)
    assert figure == FIGURE
    assert figure in panel
    assert PASSAGE in unbold(panel)
    assert "[[1]](#cite-1-1)" in answer
    assert "id='cite-1-1'" in panel
    assert "人民日报客户端山西频道" in panel
    assert "2024-03-28" in panel
    assert "shanxi-kaifaqu-rencai" in panel
    assert f"<mark>{PASSAGE}" in unbold(panel)
    assert f"<strong>{figure}</strong>" in panel  # the figure that answers, in bold inside its sentence
    assert box == ""


def test_chat_streams_partial_answers(client):
    parts = list(client.submit(Q_WENSHUI, [], ALL, ALL, "", "", api_name="/chat"))
    assert len(parts) >= 2
    assert FIGURE in last_text(parts[0][0])


def test_follow_up_uses_the_history(client):
    history, _, _ = ask(client, SHANDONG["q"])
    assert all(e in last_text(history) for e in SHANDONG["a"])
    history, panel, _ = ask(client, "那河南省人才流动条例呢？", history)  # the follow-up HENAN asks in full
    assert len(history) == 4
    assert [m["role"] for m in history] == ["user", "assistant"] * 2
    assert all(e in last_text(history) for e in HENAN["a"])
    assert "(#cite-2-1)" in last_text(history)
    # the panel keeps the first turn's passage, so the first answer's [1] still has its card
    assert "id='cite-2-1'" in panel
    assert "id='cite-1-1'" in panel
    assert panel.index("河南省人才流动条例") < panel.index("山东省人才发展促进条例")


def test_no_answer_through_the_api(client):
    history, panel, _ = ask(client, "火星上的人才政策是什么？")
    assert "未找到答案" in last_text(history)
    assert "tb-none" in panel
    assert "tb-cite" not in panel


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("人才\x00政策", "control characters"),
        ("😀🎉🚀", "no words"),
        ("人" * 100_000, "100000 characters"),
    ],
)
def test_bad_questions_get_a_clear_error(client, question, message):
    with pytest.raises(AppError) as err:
        ask(client, question)
    assert message in str(err.value)
    assert re.search(r"[\u4e00-\u9fff]{4}", str(err.value))  # said in Chinese too
    assert "Traceback" not in str(err.value)
    assert "upstream Gradio app" not in str(err.value)


def test_bad_date_filter_gets_a_clear_error(client):
    with pytest.raises(AppError, match="not a date"):
        ask(client, Q_WENSHUI, date_from="yesterday")


def test_region_filter_restricts_the_sources(client, corpus_store):
    henan = {r.title for r in TalentBot(store=corpus_store).articles() if "河南" in r.region}
    q = "人才流动条例自什么时候起施行？"
    _, everywhere, _ = ask(client, q)
    assert "上海市人才流动条例" in titles(everywhere)
    assert "河南省人才流动条例" in titles(everywhere)
    history, panel, _ = ask(client, q, region="河南")
    assert titles(panel)
    assert set(titles(panel)) <= henan
    assert HENAN["a"][0] in last_text(history)
    assert SHANGHAI["a"][0] not in last_text(history) + panel
    history, panel, _ = ask(client, q, region="上海")
    assert set(titles(panel)) == {"上海市人才流动条例"}
    assert SHANGHAI["a"][0] in last_text(history)


def test_source_and_date_filters(client):
    _, panel, _ = ask(client, "人才流动条例自什么时候起施行？", date_from="1997-01-01", date_to="1997-12-31")
    assert titles(panel) == ["上海市人才流动条例"] * len(titles(panel))
    assert titles(panel)
    _, panel, _ = ask(client, "开发区为企业兑现了多少人才奖励资金？", source="人民日报客户端山西频道")
    assert set(titles(panel)) == {"“向‘新’而行”山西省开发区多措并举 打造吸引人才“磁场高地”"}


def test_filter_matching_no_article_is_a_no_answer(client):
    history, panel, _ = ask(client, Q_WENSHUI, region="火星")
    assert "未找到答案" in last_text(history)
    assert "tb-cite" not in panel


def test_queue_answers_others_while_one_answer_is_slow(server, client, monkeypatch):
    real = server.bot.stream

    def slow(question, **kw):
        if "慢" in question:
            time.sleep(3)
        yield from real(question, **kw)

    monkeypatch.setattr(server.bot, "stream", slow)
    done: dict[str, float] = {}

    def run(q):
        ask(Client(server.url, verbose=False), q)
        done[q] = time.monotonic()

    t = threading.Thread(target=run, args=("慢慢回答：" + Q_WENSHUI,))
    t.start()
    time.sleep(0.5)
    run(Q_WENSHUI)
    t.join()
    assert done[Q_WENSHUI] < done["慢慢回答：" + Q_WENSHUI]


def test_reingest_endpoint_returns_a_summary_and_the_table(client):
    summary, table = client.predict(api_name="/reingest")
    n = len(corpus_files())  # every document of corpus/, unchanged
    assert re.search(rf"\*\*unchanged\*\* {n}\b", summary)
    assert "**failed** 0" in summary
    assert len(table["data"]) == n


def test_page_and_config_with_example_questions(server):
    import json

    status, headers, body = raw_get(server.url, "/")
    assert status == 200
    assert "text/html" in headers["content-type"]
    status, _, body = raw_get(server.url, "/config")
    config = json.dumps(json.loads(body), ensure_ascii=False)
    assert status == 200
    assert "talentbot" in config
    assert all(q in config for q in EXAMPLES)


# ------------------------------------------------------------------------------- from outside: HTTP abuse
def test_file_route_refuses_system_and_store_files(server, corpus_store, corpus_dir):
    paths = [
        "/etc/passwd",
        "../../../../../../etc/passwd",
        "..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/tmp/gradio/../../etc/passwd",
        "/tmp/gradio/%2e%2e/%2e%2e/etc/passwd",
        "//etc/passwd",
        "/ETC/passwd",
        str(corpus_store / "chroma.sqlite3"),
        str(corpus_store / ".." / Path(corpus_store).name / "chroma.sqlite3"),
        str(next(corpus_dir.glob("*.md"))),
        str(Path(__file__).resolve()),
        "pyproject.toml",
    ]
    for p in paths:
        for prefix in ("/gradio_api/file=", "/gradio_api/file/"):
            status, _, body = raw_get(server.url, prefix + p)
            assert 400 <= status < 500, (prefix + p, status)
            assert b"root:" not in body
            assert b"SQLite format" not in body


def test_forged_host_gets_no_cors_echo(server):
    port = re.search(r":(\d+)/", server.url).group(1)
    evil = {"Host": "evil.example", "Origin": "http://evil.example"}
    for path in ("/config", "/gradio_api/info", "/"):
        status, headers, _ = raw_get(server.url, path, evil)
        assert "access-control-allow-origin" not in headers, (path, headers)
        assert status == 400
    status, headers, _ = raw_get(
        server.url, "/config", {"Host": f"127.0.0.1:{port}", "Origin": "http://evil.example"}
    )
    assert status == 403
    assert "access-control-allow-origin" not in headers


def test_uploads_are_off_by_default(server):
    import httpx

    r = httpx.post(server.url + "gradio_api/upload", files={"files": ("a.md", b"# hi\n")}, timeout=10)
    assert r.status_code == 403


@pytest.mark.slow  # a server of its own, ingesting with the real model
@pytest.mark.model
def test_uploads_when_switched_on_are_size_limited_and_type_checked(tmp_path, monkeypatch):
    import httpx

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))  # uploads land in this test's temp dir
    store, corpus = tmp_path / "store", tmp_path / "corpus"
    bot = TalentBot(store=store, corpus=corpus, port=free_port(), allow_upload=True, max_upload_mb=0.01)
    srv = launch(bot, block=False)
    try:
        big = httpx.post(
            srv.url + "gradio_api/upload", files={"files": ("big.md", b"x" * 50_000)}, timeout=10
        )
        assert big.status_code == 413
        c = Client(srv.url, verbose=False)
        exe = tmp_path / "tool.exe"
        exe.write_bytes(b"MZ" + b"\0" * 100)
        with pytest.raises(AppError):
            c.predict([handle_file(str(exe))], api_name="/upload")
        assert not corpus.exists() or not any(corpus.iterdir())
        doc = tmp_path / "测试 政策.md"
        doc.write_text("# 测试人才政策\n\n第一条 本办法自2025年1月1日起施行。\n", encoding="utf-8")
        summary, table = c.predict([handle_file(str(doc))], api_name="/upload")
        assert "**added** 1" in summary
        assert len(table["data"]) == 1
        assert [p.name for p in corpus.iterdir()] == ["测试_政策.md"]
        c.close()
    finally:
        srv.close()

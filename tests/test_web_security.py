"""Issue #16, attacked from outside: a real chat server on a free loopback port, driven through raw HTTP and
gradio_client exactly as the attacks were made; each test asserts the safe outcome.

- reading server files through a chat-history file part, or through the upload function with a server path;
- uploads that replaced an article, and rejected uploads that stayed in the corpus;
- memory: uncapped bodies and fields, unbounded history and session state, one log line per bad message;
- live links the LLM or a document wrote into an answer, and URLs that swallowed the [n] marker;
- CORS: another local web page driving the chat.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.client import Endpoint
from markdown_it import MarkdownIt

from fixtures.gradio_requests import file_part, fn_index
from fixtures.helpers import WENSHUI, WENSHUI_Q, free_port
from talentbot import TalentBot
from talentbot.answer import Answer, AnswerEvent, Citation
from talentbot.web import ALL, answer_markdown, build_app, create_app, launch, md_safe
from talentbot.web_upload import upload_folder

Q = WENSHUI_Q
EVIL = "evil.example.com"


# ----------------------------------------------------------------------------------------------- helpers
@pytest.fixture
def secret(tmp_path) -> bytes:
    """A readable server file in the shape of /etc/passwd, with a marker no other file holds."""
    marker = f"root:x:0:0:{uuid.uuid4().hex}:/root:/bin/bash\n".encode()
    (tmp_path / "passwd").write_bytes(marker)
    return marker


def join(url: str, fn: int, data: list, **extra) -> httpx.Response:
    body = {
        "data": data,
        "fn_index": fn,
        "session_hash": uuid.uuid4().hex,
        "event_data": None,
        "trigger_id": None,
    }
    return httpx.post(url + "gradio_api/queue/join", json={**body, **extra}, timeout=30)


def copies(needle: bytes, since: float) -> list[Path]:
    """Files created in Gradio's upload/cache folder since ``since`` that hold ``needle`` (Gradio copies the
    files a request names there)."""
    folder = upload_folder()
    found = []
    for p in folder.rglob("*") if folder.exists() else []:
        try:
            st = p.stat()
            if p.is_file() and st.st_ctime >= since - 1 and st.st_size <= 2**20 and needle in p.read_bytes():
                found.append(p)
        except OSError:
            continue
    return found


def environ_needles() -> list[bytes]:
    """Distinctive entries of this process's /proc/self/environ (the server runs in this process)."""
    entries = [e for e in Path("/proc/self/environ").read_bytes().split(b"\0") if len(e) > 8]
    return sorted(entries, key=len, reverse=True)[:3]


# ---------------------------------------------------------------- 1. reading server files through the chat
@pytest.mark.parametrize("target", ["secret", "/proc/self/environ"])
def test_history_file_part_over_raw_http_reads_nothing(server, secret, tmp_path, target):
    start = time.time()
    path = str(tmp_path / "passwd") if target == "secret" else target
    needles = [secret] if target == "secret" else environ_needles()
    fn = fn_index(server.url, "chat")
    session = uuid.uuid4().hex
    r = join(server.url, fn, [Q, [file_part(path)], ALL, ALL, "", "", None], session_hash=session)
    assert r.status_code == 400
    assert "text only" in r.json()["detail"]
    # the other ways in: the named routes, and fn_index pointing another route at the chat
    for route, body in [
        ("run/chat", {"data": [Q, [file_part(path)], ALL, ALL, "", ""]}),
        ("call/chat", {"data": [Q, [file_part(path)], ALL, ALL, "", ""]}),
        ("call/v2/chat", {"message": Q, "history": [file_part(path)]}),
        ("run/reingest", {"data": [Q, [file_part(path)], ALL, ALL, "", "", None], "fn_index": fn}),
        ("run/chat", {"data": [Q, [file_part(path, meta=False)], ALL, ALL, "", ""]}),
    ]:
        resp = httpx.post(server.url + "gradio_api/" + route, json=body, timeout=30)
        assert resp.status_code == 400, (route, resp.status_code, resp.text[:300])
        assert all(n not in resp.content for n in needles)
        assert "/gradio_api/file=" not in resp.text
    for needle in needles:
        assert not copies(needle, start), f"{target} was copied into Gradio's cache"


def test_a_function_index_gradio_would_coerce_is_refused(server):
    """The guard checks the function Gradio will run; an fn_index it would coerce ("0", 0.0, true) could
    make the two disagree, so it is refused."""
    fn = fn_index(server.url, "chat")
    for odd in (str(fn), float(fn), True):
        r = join(server.url, fn, [Q, [], ALL, ALL, "", "", None], fn_index=odd)
        assert r.status_code == 400, (odd, r.status_code, r.text[:200])
        assert "fn_index" in r.json()["detail"], (odd, r.status_code, r.text[:200])
    assert join(server.url, fn, [Q, [], ALL, ALL, "", "", None]).status_code == 200


def test_history_file_part_through_gradio_client_reads_nothing(server, secret, tmp_path, monkeypatch):
    start = time.time()
    c = Client(server.url, verbose=False)
    try:
        # without "meta" the client passes the path through untouched: the server refuses it
        with pytest.raises(httpx.HTTPStatusError) as err:  # refused by the request guard
            c.predict(
                Q, [file_part(str(tmp_path / "passwd"), meta=False)], ALL, ALL, "", "", api_name="/chat"
            )
        assert secret.decode() not in str(err.value)
        # the exact payload, sent as written (the client would otherwise upload its own copy of the file)
        monkeypatch.setattr(Endpoint, "process_input_files", lambda self, *data: data)
        for path, needles in [
            (str(tmp_path / "passwd"), [secret]),
            ("/proc/self/environ", environ_needles()),
        ]:
            with pytest.raises(httpx.HTTPStatusError) as err:
                c.predict(Q, [file_part(path)], ALL, ALL, "", "", api_name="/chat")
            assert all(n.decode(errors="replace") not in str(err.value) for n in needles)
            assert err.value.response.status_code == 400
            for needle in needles:
                assert not copies(needle, start)
        monkeypatch.undo()
        history, _, _ = c.predict(Q, [], ALL, ALL, "", "", api_name="/chat")  # and the chat still works
        content = history[-1]["content"]
        assert WENSHUI["a"][0] in (content[0]["text"] if isinstance(content, list) else content)
    finally:
        c.close()


def test_gradio_checks_that_a_file_was_uploaded(corpus_store, secret, tmp_path):
    """Gradio's own check (processing_utils._check_allowed) runs although we mount under our own uvicorn."""
    import gradio as gr
    from gradio import processing_utils
    from gradio.context import LocalContext
    from gradio.exceptions import InvalidPathError
    from starlette.routing import Mount

    start = time.time()
    app = create_app(TalentBot(store=corpus_store, port=free_port()))
    blocks = next(r.app.blocks for r in app.routes if isinstance(r, Mount))
    assert blocks.has_launched
    chatbot = next(b for b in blocks.blocks.values() if isinstance(b, gr.Chatbot))
    token = LocalContext.blocks.set(blocks)
    try:
        with pytest.raises(InvalidPathError, match="not uploaded"):
            processing_utils.move_files_to_cache(
                [file_part(str(tmp_path / "passwd"))], chatbot, check_in_upload_folder=True
            )
    finally:
        LocalContext.blocks.reset(token)
    assert not copies(secret, start)


# ------------------------------------------------------------------- 1 and 2. the upload function, switched on
@pytest.fixture
def upload_server(tmp_path, monkeypatch):  # its tests are marked slow and model
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))  # uploads land in this test's temp dir
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("# 测试人才补贴办法\n\n第一条 博士人才安家补贴31万元。\n", encoding="utf-8")
    bot = TalentBot(store=tmp_path / "store", corpus=corpus, port=free_port(), allow_upload=True)
    assert bot.ingest([corpus]).added == 1
    srv = launch(bot, block=False)
    srv.bot, srv.corpus = bot, corpus
    yield srv
    srv.close()


def corpus_files(corpus: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(corpus.iterdir())}


@pytest.mark.slow  # a server of its own, ingesting with the real model
@pytest.mark.model
def test_an_upload_request_is_capped_in_all(upload_server):
    """Gradio caps each file; one request may still carry many: the whole body is capped too."""
    cap = int(upload_server.bot.settings.max_upload_mb * 2**20) * 20 + 2**20
    host, port = httpx.URL(upload_server.url).host, httpx.URL(upload_server.url).port
    conn = http.client.HTTPConnection(host, port, timeout=30)  # declares the size, sends only a little
    conn.putrequest("POST", "/gradio_api/upload")
    conn.putheader("Content-Type", "multipart/form-data; boundary=b")
    conn.putheader("Content-Length", str(cap + 1))
    conn.endheaders(b"x" * 16)
    r = conn.getresponse()
    assert r.status == 413
    assert "larger than" in json.loads(r.read())["detail"]
    conn.close()
    r = httpx.post(
        upload_server.url + "gradio_api/upload",
        timeout=30,
        files={"files": ("ok.md", "# 标题\n\n正文。\n".encode(), "text/markdown")},
    )
    assert r.status_code == 200, r.text[:200]  # an ordinary upload still goes through


@pytest.mark.slow  # a server of its own, ingesting with the real model
@pytest.mark.model
def test_upload_refuses_a_server_path(upload_server, tmp_path):
    target = tmp_path / "server-only.md"
    target.write_text("# 服务器上的文件\n\n第一条 这个文件不应进入语料库。\n", encoding="utf-8")
    before = corpus_files(upload_server.corpus)
    fn = fn_index(upload_server.url, "upload")
    for f in (
        {"path": str(target)},
        {"path": str(target), "meta": {"_type": "gradio.FileData"}},
        {
            "path": str(upload_folder() / ".." / ".." / target.relative_to("/")),
            "meta": {"_type": "gradio.FileData"},
        },
    ):
        r = join(upload_server.url, fn, [[f]])
        assert r.status_code == 400
        assert "upload the file itself" in r.json()["detail"]
        r = httpx.post(upload_server.url + "gradio_api/run/upload", json={"data": [[f]]}, timeout=30)
        assert r.status_code == 400
    # the function itself refuses too, should anything reach it
    demo = build_app(upload_server.bot)
    upload = next(f.fn for f in demo.fns.values() if f.name == "upload")
    with pytest.raises(Exception, match="upload the file itself"):  # gr.Error
        upload([str(target)], progress=lambda *a, **k: None)
    assert corpus_files(upload_server.corpus) == before


@pytest.mark.slow  # a server of its own, ingesting with the real model
@pytest.mark.model
def test_upload_with_an_existing_name_keeps_both(upload_server, tmp_path):
    new = tmp_path / "up" / "a.md"
    new.parent.mkdir()
    new.write_text("# 测试人才补贴办法（修订）\n\n第一条 博士人才安家补贴999万元。\n", encoding="utf-8")
    original = (upload_server.corpus / "a.md").read_bytes()
    c = Client(upload_server.url, verbose=False)
    try:
        summary, table = c.predict([handle_file(str(new))], api_name="/upload")
    finally:
        c.close()
    files = corpus_files(upload_server.corpus)
    assert files["a.md"] == original
    assert files["a-2.md"] == new.read_bytes()
    assert len(files) == 2
    assert "saved as a-2.md" in summary
    assert "**added** 1" in summary
    assert len(table["data"]) == 2
    answer = upload_server.bot.ask("博士人才安家补贴是多少？")
    assert "31万元" in answer.text + "".join(c.text for c in answer.citations)


@pytest.mark.slow  # a server of its own, ingesting with the real model
@pytest.mark.model
def test_upload_the_ingest_rejects_is_removed_from_the_corpus(upload_server, tmp_path):
    bad = tmp_path / "up" / "broken.docx"
    bad.parent.mkdir()
    bad.write_bytes(b"PK\x03\x04 this is not a real Word file " * 4)
    before = corpus_files(upload_server.corpus)
    c = Client(upload_server.url, verbose=False)
    try:
        summary, table = c.predict([handle_file(str(bad))], api_name="/upload")
    finally:
        c.close()
    assert corpus_files(upload_server.corpus) == before  # nothing left behind to re-read on every ingest
    assert "broken.docx: not added" in summary
    assert "removed from the corpus" in summary
    assert len(table["data"]) == 1
    again = upload_server.bot.ingest([upload_server.corpus])
    assert not again.failed
    assert again.unchanged == 1


@pytest.mark.slow  # a server of its own, ingesting with the real model
@pytest.mark.model
def test_history_file_part_is_refused_with_uploads_on(upload_server, secret, tmp_path):
    """With uploads on, the client may upload its file, but chat history still takes text only."""
    c = Client(upload_server.url, verbose=False)
    try:
        with pytest.raises(httpx.HTTPStatusError) as err:
            c.predict(Q, [file_part(str(tmp_path / "passwd"))], ALL, ALL, "", "", api_name="/chat")
        assert secret.decode() not in str(err.value)
        assert err.value.response.status_code == 400
    finally:
        c.close()
    assert corpus_files(upload_server.corpus).keys() == {"a.md"}


# ------------------------------------------------------------------------------- 4. memory through the chat API
def test_oversized_bodies_are_refused_before_they_are_read(server):
    fn = fn_index(server.url, "chat")
    cap = server.bot.settings.max_request_kb * 1024
    huge = "问" * cap  # 3 bytes a character in UTF-8: three times the cap
    for data in (
        [Q, [{"role": "user", "content": huge}], ALL, ALL, "", "", None],
        [Q, [], huge, ALL, "", "", None],
        [Q, [], ALL, ALL, huge, "", None],
    ):
        r = join(server.url, fn, data)
        assert r.status_code == 413
        assert "KB" in r.json()["detail"]
        assert len(r.content) < 1000

    def chunks():  # no Content-Length: the guard counts as it reads
        for _ in range(64):
            yield b"x" * 65536

    r = httpx.post(
        server.url + "gradio_api/queue/join",
        content=chunks(),
        timeout=30,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413


def test_every_chat_field_is_capped(server):
    c = Client(server.url, verbose=False)
    try:
        for args, message in [
            ((Q, [], "山" * 500, ALL, "", ""), "region filter"),
            ((Q, [], ALL, "源" * 500, "", ""), "source filter"),
            ((Q, [], ALL, ALL, "2" * 500, ""), "date from filter"),
            ((Q, [], ALL, ALL, "", "2" * 500), "date to filter"),
            (("问" * 5000, [], ALL, ALL, "", ""), "5000 characters"),
        ]:
            with pytest.raises(Exception, match=message):  # gradio_client's AppError
                c.predict(*args, api_name="/chat")
        # a long history comes back as the last max_history_turns turns, each message capped
        turns = server.bot.settings.max_history_turns
        long = [
            m
            for i in range(3 * turns)
            for m in (
                {"role": "user", "content": f"第{i}问"},
                {"role": "assistant", "content": "答" * (100 + 100 * i)},
            )
        ]
        history, _, _ = c.predict(Q, long, ALL, ALL, "", "", api_name="/chat")
    finally:
        c.close()
    assert len(history) == 2 * turns
    assert history[0]["content"][0]["text"] == f"第{2 * turns + 1}问"
    sizes = [len(m["content"][0]["text"]) for m in history]
    assert max(sizes) <= server.bot.settings.max_message_chars


def test_session_state_stays_bounded_over_many_turns(corpus_bot):
    """Direct calls, as Gradio makes them: history and the Sources State keep at most N turns, and every [n]
    link in the kept history still has its card."""
    corpus_bot.settings.max_history_turns = 5
    chat = next(f.fn for f in build_app(corpus_bot).fns.values() if f.name == "chat")
    history, shown = [], []
    for i in range(12):
        *_, (history, panel, _, shown) = chat(
            Q if i % 2 else "《山东省人才发展促进条例》自哪一天起施行？", history, ALL, ALL, "", "", shown
        )
        assert len(history) <= 10
        assert len(shown) <= 5
    assert [t for t, _, _ in shown] == [8, 9, 10, 11, 12]
    links = re.findall(r"\(#(cite-\d+-\d+)\)", " ".join(m["content"] for m in history))
    assert links
    assert all(f"id='{a}'" in panel for a in links)


def test_sessions_kept_in_memory_are_capped(corpus_store):
    from starlette.routing import Mount

    app = create_app(TalentBot(store=corpus_store, port=free_port(), max_sessions=10))
    blocks = next(r.app.blocks for r in app.routes if isinstance(r, Mount))
    for i in range(25):  # a client inventing session ids
        blocks.state_holder[f"session-{i}"]
    assert list(blocks.state_holder.session_data) == [f"session-{i}" for i in range(15, 25)]


def test_malformed_history_is_logged_once(server, caplog, capfd):
    fn = fn_index(server.url, "chat")
    caplog.set_level(logging.WARNING)
    for bad in (
        {"role": "user", "content": 5},
        {"role": "robot", "content": "x"},
        "junk",
        {"role": "user", "content": [{"type": "weird", "x": 1}]},
    ):
        caplog.clear()
        r = join(server.url, fn, [Q, [bad] * 10_000, ALL, ALL, "", "", None])
        assert r.status_code == 400
        assert "not text messages" in r.json()["detail"]
        records = [rec for rec in caplog.records if rec.name.startswith(("talentbot", "gradio"))]
        assert len(records) == 1, [rec.getMessage()[:200] for rec in records]
    assert len(capfd.readouterr().err.splitlines()) < 10  # no traceback per message


# --------------------------------------------------------------------------------------- 6. links in answers
def cite(n: int = 1) -> Citation:
    return Citation(
        n=n,
        title="测试办法",
        source="测试来源",
        date="2024-01-01",
        path="/c/a.md",
        text="博士人才安家补贴31万元。",
        score=1.0,
        quote="博士人才安家补贴31万元。",
    )


HOSTILE_LINKS = (
    f"补贴31万元[1]。详见[官方说明](https://{EVIL}/claim)、<https://{EVIL}/auto>、"
    f"[ref][x]\n\n[x]: https://{EVIL}/ref\n\n原文 https://{EVIL}/a/b.html[1] 和 www.{EVIL}/w[1]，"
    f"邮箱 admin@{EVIL}[1]，javascript:alert(1)"
)


def gfm_links(markdown: str) -> list[str]:
    """The links a GFM renderer such as Gradio's (marked) makes of ``markdown``: CommonMark links, plus the
    autolink literals it finds in the source text (http(s)/ftp URLs, www. and e-mail addresses)."""
    out = MarkdownIt("commonmark", {"html": True}).render(markdown)
    hrefs = re.findall(r'<a href="([^"]*)"', out)
    hrefs += re.findall(r"(?i)(?:(?:https?|ftp)://|www\.)[^\s<]*|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", markdown)
    return hrefs


def test_only_citation_links_are_live():
    md = answer_markdown(Answer(HOSTILE_LINKS, False, [cite(1)]), turn=3)
    assert gfm_links(md) == ["#cite-3-1"] * 4
    assert EVIL in MarkdownIt("commonmark").render(md)  # the URL is still shown, as text
    for streamed in (
        md_safe(HOSTILE_LINKS),
        md_safe(f"https://{EVIL}/x[1]"),
        md_safe(f"详见网站www.{EVIL}/x，编号2www.{EVIL}"),
    ):  # no word boundary before www
        assert gfm_links(streamed) == []


@pytest.mark.browser
def test_links_in_a_real_browser(server, monkeypatch):
    """Gradio's own renderer in Chromium: the answer bubble's only links are the citations, each [n] its own."""
    from playwright.sync_api import expect, sync_playwright

    def hostile(question, **kw):
        yield AnswerEvent(Answer(HOSTILE_LINKS, False, [cite(1)]))

    monkeypatch.setattr(server.bot, "stream", hostile)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        try:
            page = browser.new_page()
            page.route(
                "**/*",
                lambda route: (
                    route.continue_() if route.request.url.startswith(server.url) else route.abort()
                ),
            )
            page.goto(server.url)
            page.fill("#tb-question textarea", "补贴是多少？")
            page.click("#tb-send")
            bubble = page.locator("#tb-chat [data-testid='bot']").last
            expect(bubble).to_contain_text("javascript:alert(1)", timeout=20_000)
            hrefs = bubble.locator("a").evaluate_all(
                "as => as.map(a => [a.getAttribute('href'), a.textContent])"
            )
        finally:
            browser.close()
    assert hrefs == [["#cite-1-1", "[1]"]] * 4, hrefs


# --------------------------------------------------------------------------------------------- 7. CORS
def test_other_local_origins_cannot_drive_the_chat(server):
    port = int(re.search(r":(\d+)/", server.url).group(1))
    host = f"127.0.0.1:{port}"
    fn = fn_index(server.url, "chat")
    body = json.dumps(
        {"data": [Q, [], ALL, ALL, "", "", None], "fn_index": fn, "session_hash": uuid.uuid4().hex}
    )
    for origin in (
        f"http://localhost:{port + 1}",
        "http://127.0.0.1:8080",
        "http://localhost",
        "null",
        f"http://{EVIL}",
    ):
        pre = httpx.options(
            server.url + "gradio_api/queue/join",
            timeout=10,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        post = httpx.post(
            server.url + "gradio_api/queue/join",
            content=body,
            timeout=10,
            headers={"Origin": origin, "Content-Type": "application/json"},
        )
        get = httpx.get(server.url + "config", headers={"Origin": origin}, timeout=10)
        for r in (pre, post, get):
            assert r.status_code == 403, (origin, r.request.method, r.status_code)
            assert "access-control-allow-origin" not in r.headers
            assert "access-control-allow-credentials" not in r.headers
    own = httpx.post(
        server.url + "gradio_api/queue/join",
        content=body,
        timeout=10,
        headers={"Origin": f"http://{host}", "Content-Type": "application/json"},
    )
    assert own.status_code == 200
    assert "event_id" in own.json()

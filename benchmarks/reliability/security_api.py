"""The chat API attacked as issue #16 attacked it (items 1, 4 and 7), each reported as held / NOT held.

  fileread   a chat-history message whose content is a Gradio file (``/etc/passwd``, ``/proc/<pid>/environ``
             holding TALENTBOT_LLM_API_KEY, the store's chroma.sqlite3, a marker file): raw HTTP to
             /gradio_api/queue/join and the named routes, and gradio_client; any /gradio_api/file= URL that
             comes back is fetched, and Gradio's cache folder is searched for copies
  uploadpath the upload function (uploads on) given a server path instead of an upload
  cors       other local origins (localhost and 127.0.0.1 on other ports, null, a foreign site) driving the chat
  caps       a 35 MB body, over-long region / date_from / history fields, 13 sessions of long histories
             (server RSS), 10,000 malformed history messages (server log lines)

Used by security.py (``--parts``); every server is a child process on a free loopback port.
"""

from __future__ import annotations

import json
import re
import select
import socket
import sys
import time
import uuid
from pathlib import Path

import httpx
from common import ALL, OUT, ROOT, Server, md_table, raw_request

sys.path.insert(0, str(ROOT / "tests"))
from fixtures.gradio_requests import file_part, fn_index
from fixtures.gradio_requests import sse as read_sse

Q = "文水经济开发区2023年为盛达威公司兑现了多少人才奖励资金？"
EVIL = "http://evil.example.com"


def held(ok: bool) -> str:
    return "held" if ok else "**NOT held**"


def sse(url: str, session: str, seconds: float = 20) -> str:
    """The SSE lines of one session until its event completes; an HTTP error is recorded, not raised."""
    try:
        return read_sse(url, session, seconds)
    except httpx.HTTPError as e:
        return f"({type(e).__name__})"


def fetch_files(url: str, text: str) -> bytes:
    """Everything the /gradio_api/file= URLs in ``text`` return (what an attacker would GET next)."""
    got = b""
    for path in set(re.findall(r"/gradio_api/file=[^\"'\s\\]+", text)):
        status, _, body = raw_request(url, "GET", path)
        got += body if status == 200 else b""
    return got


def post_big(
    url: str, path: str, body: bytes, timeout: float = 120, chunked: bool = False
) -> tuple[int, bytes]:
    """POST ``body`` over a plain socket, reading the server's answer as soon as it comes (a server that refuses
    a big body answers before it is all sent, then closes the connection): (status, response body).
    ``chunked``: no Content-Length (Transfer-Encoding: chunked), so the server must count as it reads."""
    host, port = re.match(r"http://([^:/]+):(\d+)", url).groups()
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"{length}\r\nConnection: close\r\n\r\n"
    ).encode()
    got = b""
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head)
        try:
            for i in range(0, len(body), 2**16):
                if select.select([sock], [], [], 0)[0]:
                    break  # the answer is there: stop sending
                part = body[i : i + 2**16]
                sock.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            else:
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # closed by the server mid-body: its answer, if any, is still readable
        try:
            while chunk := sock.recv(65536):
                got += chunk
        except OSError:
            pass
    m = re.match(rb"HTTP/1\.1 (\d+)", got)
    return (int(m.group(1)) if m else 0), got.split(b"\r\n\r\n", 1)[-1]


def cache_copies(folder: Path, needle: bytes) -> int:
    """Files in the server's Gradio cache folder that hold ``needle``."""
    n = 0
    for p in folder.rglob("*") if folder.exists() else []:
        try:
            n += p.is_file() and p.stat().st_size <= 2**22 and needle in p.read_bytes()
        except OSError:
            continue
    return n


# ------------------------------------------------------------------------------------------- file read
def part_fileread(store: Path, corpus: Path) -> str:
    base = OUT / "security-api"
    base.mkdir(parents=True, exist_ok=True)
    gradio_tmp = base / "gradio-tmp"
    key = "sk-reliability-" + uuid.uuid4().hex
    secret = base / "passwd"
    marker = f"root:x:0:0:{uuid.uuid4().hex}:/root:/bin/bash\n".encode()
    secret.write_bytes(marker)
    rows = []
    with Server(
        store, corpus, extra_env={"TALENTBOT_LLM_API_KEY": key, "GRADIO_TEMP_DIR": str(gradio_tmp)}
    ) as srv:
        fn = fn_index(srv.url, "chat")
        db = store / "chroma.sqlite3"
        targets = [
            ("marker file", str(secret), marker),
            ("/etc/passwd", "/etc/passwd", b"root:"),
            ("/proc/<server pid>/environ (API key)", f"/proc/{srv.pid}/environ", key.encode()),
            ("/proc/self/environ (API key)", "/proc/self/environ", key.encode()),
            ("store's chroma.sqlite3", str(db), db.read_bytes()[:16]),
        ]
        for label, path, needle in targets:
            session = uuid.uuid4().hex
            body = json.dumps(
                {
                    "data": [Q, [file_part(path)], ALL, ALL, "", "", None],
                    "fn_index": fn,
                    "session_hash": session,
                    "event_data": None,
                    "trigger_id": None,
                }
            ).encode()
            status, _, resp = raw_request(
                srv.url, "POST", "/gradio_api/queue/join", {"Content-Type": "application/json"}, body
            )
            stream = sse(srv.url, session) if status == 200 else ""
            leaked = needle in resp or needle in fetch_files(srv.url, stream + resp.decode(errors="replace"))
            detail = (
                json.loads(resp).get("detail", "")
                if resp.startswith(b"{")
                else resp[:80].decode(errors="replace")
            )
            rows.append(
                [
                    label,
                    "raw HTTP: queue/join",
                    status,
                    str(detail)[:90],
                    "yes" if leaked else "no",
                    held(not leaked and status != 200),
                ]
            )
        for route, payload in [
            ("run/chat", {"data": [Q, [file_part(str(secret))], ALL, ALL, "", ""]}),
            ("call/chat", {"data": [Q, [file_part(str(secret))], ALL, ALL, "", ""]}),
            ("call/v2/chat", {"message": Q, "history": [file_part(str(secret))]}),
            (
                "run/reingest (fn_index of chat)",
                {"data": [Q, [file_part(str(secret))], ALL, ALL, "", "", None], "fn_index": fn},
            ),
            ("run/chat, no meta", {"data": [Q, [file_part(str(secret), meta=False)], ALL, ALL, "", ""]}),
        ]:
            r = httpx.post(srv.url + "gradio_api/" + route.split(" ")[0], json=payload, timeout=30)
            leaked = marker in r.content or marker in fetch_files(srv.url, r.text)
            rows.append(
                [
                    "marker file",
                    f"raw HTTP: {route}",
                    r.status_code,
                    r.text[:90],
                    "yes" if leaked else "no",
                    held(not leaked and r.status_code >= 400),
                ]
            )
        rows += client_attempts(srv.url, secret, marker, f"/proc/{srv.pid}/environ", key.encode())
        copies = sum(cache_copies(gradio_tmp, n) for n in (marker, key.encode()))
    ok = all(r[-1] == "held" for r in rows) and not copies
    return "\n".join(
        [
            "### Server files read through a chat-history file part (issue #16, item 1)\n",
            "Server with default settings (uploads off), `TALENTBOT_LLM_API_KEY` set in its environment and its "
            "Gradio cache in a folder of its own. Each request carries the issue's payload "
            '`{"role":"user","content":[{"type":"file","file":{"path":PATH,"meta":'
            '{"_type":"gradio.FileData"}}}]}` as the chat history; an answer\'s `/gradio_api/file=` URLs would be '
            "fetched.\n",
            md_table(["target", "how", "status", "response", "content leaked", "verdict"], rows),
            f"\nCopies of the marker file or the key found in the server's Gradio cache afterwards: **{copies}**. "
            f"Result: **{'held' if ok else 'NOT held'}**.",
        ]
    )


def client_attempts(url: str, secret: Path, marker: bytes, environ: str, key: bytes) -> list[list]:
    """The same payload through gradio_client: as the client sends it, and sent exactly as written."""
    from gradio_client import Client
    from gradio_client.client import Endpoint

    rows = []
    c = Client(url, verbose=False, download_files=False)
    real = Endpoint.process_input_files
    try:
        for label, path, needle, exact in [
            ("marker file", str(secret), marker, False),
            ("marker file", str(secret), marker, True),
            ("/proc/<server pid>/environ (API key)", environ, key, True),
        ]:
            Endpoint.process_input_files = (lambda self, *data: data) if exact else real
            try:
                out = c.predict(Q, [file_part(path, meta=exact)], ALL, ALL, "", "", api_name="/chat")
                text, status = json.dumps(out, ensure_ascii=False), "answered"
            except Exception as e:  # noqa: BLE001 - the refusal is the measured outcome
                text, status = str(e), type(e).__name__
                if isinstance(e, httpx.HTTPStatusError):
                    status = f"{e.response.status_code}"
                    text = e.response.text
            leaked = needle in text.encode() or needle in fetch_files(url, text)
            how = "gradio_client, payload as written" if exact else "gradio_client, path without meta"
            rows.append(
                [
                    label,
                    how,
                    status,
                    text[:90],
                    "yes" if leaked else "no",
                    held(not leaked and status != "answered"),
                ]
            )
    finally:
        Endpoint.process_input_files = real
        c.close()
    return rows


def part_uploadpath(store: Path, corpus: Path) -> str:
    target = OUT / "security-api" / "server-only.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("# 服务器上的文件\n\n第一条 这个文件不应进入语料库。\n", encoding="utf-8")
    before = sorted(p.name for p in corpus.iterdir())
    rows = []
    with Server(
        store,
        corpus,
        allow_upload=True,
        max_upload_mb=1,
        extra_env={"GRADIO_TEMP_DIR": str(OUT / "security-api" / "gradio-tmp-up")},
    ) as srv:
        fn = fn_index(srv.url, "upload")
        for label, f in [
            ("{path}", {"path": str(target)}),
            ("{path, meta: FileData}", {"path": str(target), "meta": {"_type": "gradio.FileData"}}),
            ("{path: /etc/passwd}", {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}),
        ]:
            session = uuid.uuid4().hex
            r = httpx.post(
                srv.url + "gradio_api/queue/join",
                timeout=30,
                json={
                    "data": [[f]],
                    "fn_index": fn,
                    "session_hash": session,
                    "event_data": None,
                    "trigger_id": None,
                },
            )
            stream = sse(srv.url, session) if r.status_code == 200 else ""
            r2 = httpx.post(srv.url + "gradio_api/run/upload", json={"data": [[f]]}, timeout=60)
            added = sorted(p.name for p in corpus.iterdir()) != before
            rows.append(
                [
                    label,
                    r.status_code,
                    r.text[:90],
                    r2.status_code,
                    "yes" if added else "no",
                    held(
                        not added
                        and r.status_code >= 400
                        and r2.status_code >= 400
                        and "server-only" not in stream
                    ),
                ]
            )
    return "\n".join(
        [
            "### The upload function given a server path (issue #16, item 1, uploads on)\n",
            md_table(
                [
                    "file value",
                    "queue/join status",
                    "message",
                    "run/upload status",
                    "file entered the corpus",
                    "verdict",
                ],
                rows,
            ),
        ]
    )


# ---------------------------------------------------------------------------------------------- CORS
def part_cors(store: Path, corpus: Path) -> str:
    rows = []
    with Server(store, corpus) as srv:
        port = int(re.search(r":(\d+)/", srv.url).group(1))
        fn = fn_index(srv.url, "chat")
        body = json.dumps(
            {"data": [Q, [], ALL, ALL, "", "", None], "fn_index": fn, "session_hash": uuid.uuid4().hex}
        ).encode()
        for origin in (
            f"http://localhost:{port + 1}",
            f"http://127.0.0.1:{port + 1}",
            "http://127.0.0.1:8080",
            "http://localhost",
            "null",
            EVIL,
            f"http://127.0.0.1:{port}",
        ):
            own = origin == f"http://127.0.0.1:{port}"
            for method, path, headers, data in [
                (
                    "OPTIONS",
                    "/gradio_api/queue/join",
                    {
                        "Access-Control-Request-Method": "POST",
                        "Access-Control-Request-Headers": "content-type",
                    },
                    None,
                ),
                ("POST", "/gradio_api/queue/join", {"Content-Type": "application/json"}, body),
                ("GET", "/config", {}, None),
            ]:
                status, h, resp = raw_request(srv.url, method, path, {"Origin": origin, **headers}, data)
                acao, creds = (
                    h.get("access-control-allow-origin", ""),
                    h.get("access-control-allow-credentials", ""),
                )
                drove = method == "POST" and status == 200 and b"event_id" in resp
                ok = (drove if own else not drove and not acao and status >= 400) or (
                    own and method != "POST"
                )
                rows.append(
                    [
                        origin,
                        method,
                        path,
                        status,
                        acao or "(none)",
                        creds or "(none)",
                        "own origin: works" if own and ok else held(ok),
                    ]
                )
    bad = [r for r in rows if "NOT" in r[-1]]
    return "\n".join(
        [
            "### Other local origins driving the chat (issue #16, item 7)\n",
            "Preflight, the chat's `queue/join` and `/config`, each with the `Origin` shown (Host is the server's).\n",
            md_table(
                [
                    "Origin",
                    "method",
                    "path",
                    "status",
                    "Access-Control-Allow-Origin",
                    "Access-Control-Allow-Credentials",
                    "verdict",
                ],
                rows,
            ),
            f"\nResult: **{'held' if not bad else 'NOT held'}** ({len(bad)} request(s) let through).",
        ]
    )


# -------------------------------------------------------------------------------------- caps and memory
def part_caps(store: Path, corpus: Path, sessions: int = 13) -> str:
    rows = []
    with Server(store, corpus) as srv:
        fn = fn_index(srv.url, "chat")

        def join(data: list, chunked: bool = False) -> tuple[int, bytes, float]:
            raw = json.dumps(
                {
                    "data": data,
                    "fn_index": fn,
                    "session_hash": uuid.uuid4().hex,
                    "event_data": None,
                    "trigger_id": None,
                },
                ensure_ascii=False,
            ).encode()
            t0 = time.perf_counter()
            status, resp = post_big(srv.url, "/gradio_api/queue/join", raw, chunked=chunked)
            return status, resp, time.perf_counter() - t0

        rss0 = srv.rss_mb()
        big = "问" * (35 * 2**20 // 3)
        for label, data, chunked in [
            ("35 MB history", [Q, [{"role": "user", "content": big}], ALL, ALL, "", "", None], False),
            ("35 MB region", [Q, [], big, ALL, "", "", None], False),
            ("35 MB date_from", [Q, [], ALL, ALL, big, "", None], False),
            (
                "35 MB history, chunked (no Content-Length)",
                [Q, [{"role": "user", "content": big}], ALL, ALL, "", "", None],
                True,
            ),
        ]:
            status, resp, secs = join(data, chunked)
            rows.append(
                [
                    label,
                    status,
                    f"{secs:.2f} s",
                    len(resp),
                    resp[:90].decode(errors="replace"),
                    held(status == 413 and len(resp) < 2000),
                ]
            )
        rss_big = srv.hwm_mb()
        from gradio_client import Client

        c = Client(srv.url, verbose=False)
        try:
            for label, args in [
                ("region of 500 characters", (Q, [], "山" * 500, ALL, "", "")),
                ("date_from of 500 characters", (Q, [], ALL, ALL, "2" * 500, "")),
                ("question of 5,000 characters", ("问" * 5000, [], ALL, ALL, "", "")),
            ]:
                try:
                    c.predict(*args, api_name="/chat")
                    rows.append([label, "answered", "", "", "", held(False)])
                except Exception as e:  # noqa: BLE001 - the refusal is the outcome
                    rows.append(
                        [label, type(e).__name__, "", len(str(e)), str(e)[:90], held(len(str(e)) < 2000)]
                    )
            # sessions with long histories: what each one leaves in the server
            long = [
                m
                for i in range(200)
                for m in (
                    {"role": "user", "content": f"第{i}问" + "问" * 100},
                    {"role": "assistant", "content": "答" * 500},
                )
            ]
            rss_before = srv.rss_mb()
            kept = []
            for _ in range(sessions):
                s = Client(srv.url, verbose=False)
                try:
                    history, _, _ = s.predict(Q, long, ALL, ALL, "", "", api_name="/chat")
                    kept.append(len(history))
                except Exception as e:  # noqa: BLE001
                    kept.append(type(e).__name__)
                finally:
                    s.close()
            rss_after = srv.rss_mb()
        finally:
            c.close()
        per_session = (rss_after - rss_before) / sessions
        body_kb = len(json.dumps(long, ensure_ascii=False).encode()) // 1024
        lines0 = srv.log_lines()
        flood = []
        for bad in ({"role": "user", "content": 5}, {"role": "robot", "content": "x"}, "junk"):
            status, resp, _ = join([Q, [bad] * 10_000, ALL, ALL, "", "", None])
            flood.append(status)
        time.sleep(1)
        log_added = srv.log_lines() - lines0
    return "\n".join(
        [
            "### Request body and field caps, per-session memory, log flood (issue #16, item 4)\n",
            f"Server with default settings (RSS {rss0:.0f} MB after warm-up; peak {rss_big:.0f} MB after the 35 MB "
            "bodies).\n",
            md_table(["request", "status / error", "time", "response bytes", "response", "verdict"], rows),
            f"\n**Sessions**: {sessions} new gradio_client sessions, each sending a history of 200 turns "
            f"({body_kb} KB) with its question: history sent back {sorted(set(map(str, kept)))} messages; server RSS "
            f"{rss_before:.0f} -> {rss_after:.0f} MB, **{per_session:.1f} MB per session** "
            f"({held(per_session < 10)}; before the fix 30-60 MB).\n",
            f"**Log flood**: 3 requests of 10,000 malformed history messages each (statuses {flood}) added "
            f"**{log_added}** lines to the server log ({held(log_added <= 3 * 5)}; before the fix about 30,000).",
        ]
    )

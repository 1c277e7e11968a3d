"""Load on the real chat server, through gradio_client, on loopback.

Parts (all by default):
  load       N concurrent sessions (default 50) ask eval questions for S seconds (default 60);
             requests, errors, p50/p95 time to first token and to the full answer.
  queue      a server with concurrency=2, max_queue=2 flooded by 40 sessions at once: the ones that
             do not fit get gradio_client's QueueError ('Queue is full! Please try again.') at once.
  isolation  20 parallel two-turn sessions with distinct histories: each gets exactly the answers and
             Sources panel it gets when alone.
  ingest     20 sessions chat while the corpus is re-indexed 3 times through /reingest (one file
             edited each time): errors during the ingests.

    .venv/bin/python benchmarks/reliability/load.py                  # everything, ~4 min
    .venv/bin/python benchmarks/reliability/load.py --parts load --sessions 50 --seconds 60

The server runs in a child process (``talentbot.web.launch(TalentBot(...), block=False)``), the
load part's clients in 4 worker processes (``--procs``), so clients and server share the machine's CPUs:
the figures include that.
Time to first token is seen by polling the job's outputs every 20 ms (gradio_client's own iterator
spins on a 1 ms sleep, which with 50 sessions would eat the CPU the server needs).
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import random
import re
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from common import (
    ALL,
    OUT,
    Server,
    copy_corpus,
    corpus_store,
    machine,
    md_table,
    percentile,
    questions,
    setup_env,
    write_section,
)

POLL = 0.02


def cache_ssl_contexts() -> None:
    """Make httpx reuse one SSL context per configuration in this (client) process.

    gradio_client opens a new httpx client for each request, and httpx builds a new SSL context for
    each client (loading the CA bundle, also for http:// URLs): about 38 ms of CPU per request here,
    twice what the server spends answering. On a 2-CPU machine shared with the server that load
    generator overhead, not the server, would set the latency. ``--raw-client`` turns this off.
    """
    import httpx._transports.default as transports

    real = transports.create_ssl_context
    cache: dict = {}
    lock = threading.Lock()

    def cached(verify=True, cert=None, trust_env=True):
        key = (repr(verify), repr(cert), trust_env)
        with lock:
            if key not in cache:
                cache[key] = real(verify=verify, cert=cert, trust_env=trust_env)
            return cache[key]

    transports.create_ssl_context = cached


FOLLOW_UP = "这一条的具体规定是什么？"


def text_of(message) -> str:
    content = message.get("content") if isinstance(message, dict) else message
    if isinstance(content, list):
        return "".join(c.get("text", "") for c in content if isinstance(c, dict))
    return content if isinstance(content, str) else ""


def assistant_text(output) -> str:
    history = (
        output[0] if isinstance(output, (list, tuple)) and output and isinstance(output[0], list) else []
    )
    if history and isinstance(history[-1], dict) and history[-1].get("role") == "assistant":
        return text_of(history[-1])
    return ""


def client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False)


def timed_ask(c, question: str, history: list | None = None, timeout: float = 120) -> dict:
    """Submit one question; time to the first non-empty assistant text and to the final output."""
    t0 = time.perf_counter()
    job = c.submit(question, history or [], ALL, ALL, "", "", api_name="/chat")
    first = None
    seen = 0
    while first is None and not job.done():  # once the first token is seen, result() just waits
        outs = job.outputs()
        for o in outs[seen:]:
            if assistant_text(o).strip():
                first = time.perf_counter() - t0
                break
        seen = len(outs)
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"no answer in {timeout} s")
        time.sleep(POLL)
    out = job.result(timeout=max(1.0, timeout - (time.perf_counter() - t0)))
    total = time.perf_counter() - t0
    if first is None:
        first = total if assistant_text(out).strip() else None
    return {"first": first, "total": total, "output": out}


# ---------------------------------------------------------------------------------------------- load
def run_sessions(url: str, ids: list[int], seconds: float, start_at: float, raw: bool) -> dict:
    """Sessions ``ids`` against ``url``, one thread each, from wall-clock ``start_at`` for ``seconds``.
    Runs in a worker process of its own (``--procs``), so that many sessions are not all bound by one
    client process's GIL; returns the timings, the errors and this process's CPU seconds."""
    if not raw:
        cache_ssl_contexts()
    qs = questions()
    with ThreadPoolExecutor(len(ids)) as pool:
        clients = list(pool.map(lambda _: client(url), ids))
    results: list[dict] = []
    errors: list[str] = []
    lock = threading.Lock()

    def session(i: int, c) -> None:
        rnd = random.Random(i)
        history: list = []
        time.sleep(max(0.0, start_at - time.time()))
        deadline = time.monotonic() + seconds
        for _ in range(100_000):  # bounded
            if time.monotonic() >= deadline:
                break
            row = rnd.choice(qs)
            try:
                r = timed_ask(c, row["q"], history[-4:])
                text = assistant_text(r["output"])
                if not text.strip():
                    raise ValueError("empty answer")
                history = r["output"][0]
                ok = all(a in text for a in row["a"]) if row.get("a") else None
                with lock:
                    results.append({"first": r["first"], "total": r["total"], "correct": ok})
            except Exception as e:  # noqa: BLE001 - every failure is counted and reported
                with lock:
                    errors.append(f"{type(e).__name__}: {str(e)[:120]}")

    cpu0 = sum(os.times()[:2])
    with ThreadPoolExecutor(len(ids)) as pool:
        list(pool.map(session, ids, clients))
    cpu, end = sum(os.times()[:2]) - cpu0, time.time()
    for c in clients:
        c.close()
    return {"results": results, "errors": errors, "cpu": cpu, "end": end}


def part_load(store, corpus, sessions: int, seconds: float, raw: bool = False, procs: int = 1) -> str:
    procs = max(1, min(procs, sessions))
    with Server(store, corpus) as srv:
        print(
            f"server {srv.url} (concurrency 4, max_queue 64); {sessions} sessions in {procs} client "
            "process(es)",
            flush=True,
        )
        rss = []

        def sample_rss(stop: threading.Event) -> None:
            while not stop.is_set():
                rss.append(srv.rss_mb())
                stop.wait(1)

        groups = [list(range(sessions))[k::procs] for k in range(procs)]
        start_at = time.time() + 10 + sessions * 0.1  # time for every process to start and open its clients
        stop = threading.Event()
        threading.Thread(target=sample_rss, args=(stop,), daemon=True).start()
        if procs == 1:
            server0 = srv.cpu_seconds()
            outs = [run_sessions(srv.url, groups[0], seconds, start_at, raw)]
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(procs, mp_context=ctx) as pool:
                futures = [pool.submit(run_sessions, srv.url, g, seconds, start_at, raw) for g in groups]
                time.sleep(max(0.0, start_at - time.time()))
                server0 = srv.cpu_seconds()
                outs = [f.result() for f in futures]
        wall = max(o["end"] for o in outs) - start_at
        server_cpu, client_cpu = srv.cpu_seconds() - server0, sum(o["cpu"] for o in outs)
        stop.set()
    results = [r for o in outs for r in o["results"]]
    errors = [e for o in outs for e in o["errors"]]
    firsts = [r["first"] for r in results if r["first"] is not None]
    totals = [r["total"] for r in results]
    graded = [r["correct"] for r in results if r["correct"] is not None]
    n = len(results) + len(errors)
    line = (
        f"{sessions} sessions x {seconds:.0f} s: {n} requests ({n / wall:.1f}/s), {len(errors)} errors; "
        f"first token p50 {percentile(firsts, 50):.3f} s p95 {percentile(firsts, 95):.3f} s; "
        f"full answer p50 {percentile(totals, 50):.3f} s p95 {percentile(totals, 95):.3f} s "
        f"max {max(totals, default=float('nan')):.3f} s"
    )
    print(line, flush=True)
    for e in sorted(set(errors))[:10]:
        print("  error:", e)
    verdict = "met" if not errors and percentile(totals, 95) < 2.0 else "NOT met"
    per = 1000 / max(n, 1)
    print(f"CPU per request: server {server_cpu * per:.1f} ms, clients {client_cpu * per:.1f} ms", flush=True)
    client_kind = "gradio_client as shipped" if raw else "gradio_client with httpx SSL contexts cached"
    client_kind += f", in {procs} client process{'es' if procs > 1 else ''}"
    return "\n".join(
        [
            f"**{sessions} concurrent sessions for {seconds:.0f} s, {client_kind}** (server: default settings, "
            "concurrency 4, max_queue 64, extractive answers; each session asks random questions of `eval/*.jsonl` "
            "with its last two turns as history, the next one as soon as the answer is complete).\n",
            md_table(
                [
                    "requests",
                    "errors",
                    "req/s",
                    "first token p50",
                    "first token p95",
                    "full answer p50",
                    "full answer p95",
                    "full answer max",
                    "answers holding the expected text",
                    "server RSS max",
                    "CPU per request: server / clients",
                ],
                [
                    [
                        n,
                        len(errors),
                        f"{n / wall:.1f}",
                        f"{percentile(firsts, 50):.3f} s",
                        f"{percentile(firsts, 95):.3f} s",
                        f"{percentile(totals, 50):.3f} s",
                        f"{percentile(totals, 95):.3f} s",
                        f"{max(totals, default=float('nan')):.3f} s",
                        f"{sum(graded)}/{len(graded)}",
                        f"{max(rss, default=float('nan')):.0f} MB",
                        f"{server_cpu * per:.1f} / {client_cpu * per:.1f} ms",
                    ]
                ],
            ),
            f"\nTarget (0 errors, p95 full answer < 2 s): **{verdict}**."
            + ("" if not errors else "\nErrors: " + "; ".join(sorted(set(errors))[:5])),
        ]
    )


# --------------------------------------------------------------------------------------------- queue
def _flood_one(clients, qs, go, i: int) -> tuple[str, float, str]:
    from gradio_client.utils import QueueError

    go.wait()
    t0 = time.perf_counter()
    try:
        r = timed_ask(clients[i], qs[i % len(qs)]["q"], timeout=60)
        return "answered", time.perf_counter() - t0, assistant_text(r["output"])[:20]
    except QueueError as e:
        return "QueueError", time.perf_counter() - t0, str(e)
    except Exception as e:  # noqa: BLE001 - reported
        return type(e).__name__, time.perf_counter() - t0, str(e)[:100]


def part_queue(store, corpus, flood: int = 40) -> str:
    rows = []
    qs = questions()
    for delay in (1.0, 0.0):
        with Server(store, corpus, concurrency=2, max_queue=2, delay=delay) as srv:
            with ThreadPoolExecutor(flood) as pool:
                clients = list(pool.map(lambda _: client(srv.url), range(flood)))
            go = threading.Barrier(flood)
            with ThreadPoolExecutor(flood) as pool:
                got = list(pool.map(functools.partial(_flood_one, clients, qs, go), range(flood)))
            after = timed_ask(client(srv.url), qs[0]["q"])  # the server still answers once the flood is over
            for c in clients:
                c.close()
        busy = [t for kind, t, _ in got if kind == "QueueError"]
        done = [t for kind, t, _ in got if kind == "answered"]
        other = [f"{k}: {m}" for k, _, m in got if k not in ("QueueError", "answered")]
        messages = sorted({m for k, _, m in got if k == "QueueError"})
        label = f"{delay:.0f} s per answer (a slow LLM)" if delay else "extractive (no delay)"
        print(
            f"queue full, {label}: {len(done)} answered (max {max(done, default=0):.2f} s), {len(busy)} "
            f"QueueError (max wait {max(busy, default=0):.3f} s), other {other[:3]}; after: "
            f"{after['total']:.2f} s",
            flush=True,
        )
        rows.append(
            [
                label,
                flood,
                len(done),
                f"{max(done, default=float('nan')):.2f} s",
                len(busy),
                f"{percentile(busy, 50):.3f} s" if busy else "-",
                f"{max(busy):.3f} s" if busy else "-",
                len(other),
                "; ".join(messages) or "-",
                f"{after['total']:.2f} s",
            ]
        )
    return "\n".join(
        [
            f"**Queue full** (server launched with `concurrency=2`, `max_queue=2`; {flood} sessions submit at the "
            "same instant).\n",
            md_table(
                [
                    "answers",
                    "sessions",
                    "answered",
                    "slowest answered",
                    "refused (QueueError)",
                    "refusal p50",
                    "refusal max",
                    "other errors",
                    "message",
                    "next question after the flood",
                ],
                rows,
            ),
            "\nRefused sessions get `gradio_client.utils.QueueError('Queue is full! Please try again.')` (HTTP 503 "
            "from `/gradio_api/queue/join`) within the time shown, never a hang. (What the browser page shows for "
            "a refused request is Gradio's own error display; it is not measured here.)",
        ]
    )


# ----------------------------------------------------------------------------------------- isolation
def history_questions(panel: str) -> list[str]:
    return re.findall(r"class='tb-turn'>第\d+问 · Q\d+: (.*?)</div>", panel)


def two_turns(c, q1: str) -> dict:
    a = timed_ask(c, q1)["output"]
    b = timed_ask(c, FOLLOW_UP, a[0])["output"]
    return {"history": [(m.get("role"), text_of(m)) for m in b[0]], "panel": b[1]}


def _isolated_one(clients, picked, go, i: int):
    go.wait()
    try:
        return two_turns(clients[i], picked[i])
    except Exception as e:  # noqa: BLE001 - counted by the caller
        return e


def part_isolation(store, corpus, n: int = 20, rounds: int = 3) -> str:
    qs = questions()
    picked = [qs[i * len(qs) // n]["q"] for i in range(n)]
    with Server(store, corpus, concurrency=4) as srv:
        alone = [two_turns(client(srv.url), q) for q in picked]
        leaks = mismatches = errors = 0
        for _ in range(rounds):
            with ThreadPoolExecutor(n) as pool:
                clients = list(pool.map(lambda _: client(srv.url), range(n)))
            go = threading.Barrier(n)
            with ThreadPoolExecutor(n) as pool:
                got = list(pool.map(functools.partial(_isolated_one, clients, picked, go), range(n)))
            for i, g in enumerate(got):
                if isinstance(g, Exception):
                    errors += 1
                    continue
                users = [t for role, t in g["history"] if role == "user"]
                others = set(picked) - {picked[i]}
                if any(o in users or o in g["panel"] for o in others):
                    leaks += 1
                if g["history"] != alone[i]["history"] or history_questions(g["panel"]) != [
                    FOLLOW_UP,
                    picked[i],
                ]:
                    mismatches += 1
            for c in clients:
                c.close()
    print(
        f"isolation: {n} sessions x {rounds} rounds: {leaks} leaks, {mismatches} differ from alone, "
        f"{errors} errors",
        flush=True,
    )
    return (
        f"**Session isolation**: {n} sessions at once, each a two-turn chat (a different eval question, then "
        f"the follow-up `{FOLLOW_UP}` with its own history), {rounds} rounds. Each session's final history and "
        "Sources panel are compared with those of the same chat run alone.\n\n"
        + md_table(
            ["sessions x rounds", "saw another session's question", "differs from the chat alone", "errors"],
            [[f"{n} x {rounds}", leaks, mismatches, errors]],
        )
    )


# -------------------------------------------------------------------------------------------- ingest
def part_ingest(n: int = 20, ingests: int = 3) -> str:
    corpus = copy_corpus(OUT / "ingest-during-chat" / "corpus")
    corpus, store = corpus_store("ingest-during-chat", corpus)
    qs = questions()
    with Server(store, corpus) as srv:
        with ThreadPoolExecutor(n) as pool:
            clients = list(pool.map(lambda _: client(srv.url), range(n)))
        stop = threading.Event()
        counts = {"requests": 0, "errors": 0, "empty": 0}
        errs: list[str] = []
        lock = threading.Lock()

        def chat(i: int) -> None:
            rnd = random.Random(i)
            for _ in range(100_000):
                if stop.is_set():
                    return
                try:
                    r = timed_ask(clients[i], rnd.choice(qs)["q"])
                    with lock:
                        counts["requests"] += 1
                        counts["empty"] += not assistant_text(r["output"]).strip()
                except Exception as e:  # noqa: BLE001 - counted
                    with lock:
                        counts["errors"] += 1
                        errs.append(f"{type(e).__name__}: {str(e)[:100]}")

        ingest_rows = []
        admin = client(srv.url)
        files = sorted(corpus.glob("*.md"))
        with ThreadPoolExecutor(n) as pool:
            futures = [pool.submit(chat, i) for i in range(n)]
            time.sleep(5)
            for k in range(ingests):
                f = files[k % len(files)]
                with open(f, "a", encoding="utf-8") as fh:
                    fh.write(
                        f"\n第九十{k + 1}条 本条为负载测试第{k + 1}次追加的内容，自2030年{k + 1}月1日起施行。\n"
                    )
                t0 = time.perf_counter()
                try:
                    summary, _table = admin.predict(api_name="/reingest")
                    summary = re.sub(r"\*\*", "", summary).split("\n")[0]
                except Exception as e:  # noqa: BLE001 - reported
                    summary = f"FAILED {type(e).__name__}: {e}"
                ingest_rows.append([k + 1, f.name, f"{time.perf_counter() - t0:.1f} s", summary])
                print("reingest", ingest_rows[-1], flush=True)
                time.sleep(3)
            stop.set()
            for fu in futures:
                fu.result()
        for c in [*clients, admin]:
            c.close()
    print(f"ingest during chat: {counts}", flush=True)
    return "\n".join(
        [
            f"**Ingest during chat**: {n} sessions ask eval questions while `/reingest` (the Articles tab's button, "
            f"`bot.ingest` in the server process) re-indexes the corpus {ingests} times, one file edited before each.\n",
            md_table(["#", "edited file", "reingest time", "summary"], ingest_rows),
            "\n"
            + md_table(
                ["chat requests", "errors", "empty answers"],
                [[counts["requests"], counts["errors"], counts["empty"]]],
            ),
            ("\nErrors: " + "; ".join(sorted(set(errs))[:5])) if errs else "",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="load,queue,isolation,ingest")
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--no-write", action="store_true", help="print only; leave RELIABILITY.md alone")
    ap.add_argument(
        "--raw-client",
        action="store_true",
        help="leave gradio_client as shipped (a new SSL context per request: see cache_ssl_contexts)",
    )
    ap.add_argument(
        "--procs",
        type=int,
        default=4,
        help="client processes the sessions are spread over (one Python process's GIL caps how many "
        "requests gradio_client can prepare per second)",
    )
    args = ap.parse_args()
    setup_env()
    if not args.raw_client:
        cache_ssl_contexts()
    parts = args.parts.split(",")
    corpus, store = corpus_store("load")
    runs = {
        "load": lambda: part_load(store, corpus, args.sessions, args.seconds, args.raw_client, args.procs),
        "queue": lambda: part_queue(store, corpus),
        "isolation": lambda: part_isolation(store, corpus),
        "ingest": part_ingest,
    }
    intro = "\n\n".join(
        [
            "## Load (`benchmarks/reliability/load.py`)",
            "```bash\n.venv/bin/python benchmarks/reliability/load.py            # all parts, about 5 minutes\n"
            ".venv/bin/python benchmarks/reliability/load.py --parts load --sessions 50 --seconds 60\n```",
            "The chat server runs in a child process (`talentbot.web.launch(TalentBot(...), block=False)` over the "
            "ingested `corpus/`); the gradio_client sessions of the load part run in 4 client processes (`--procs`), "
            "since one Python process's GIL caps how many requests gradio_client can prepare per second. Clients "
            "and server share the same 2 CPUs. Each part below is rewritten when it is run.",
            "gradio_client opens a new httpx client, and so builds a new SSL context (loading the CA bundle, even "
            "for `http://`), for every request: about 38 ms of CPU per request on this machine against about 16 ms "
            "that the server spends answering. On 2 CPUs shared with the server, that load-generator cost sets the "
            "latency, so the script caches httpx's SSL contexts in its client processes by default; "
            "`--raw-client` measures gradio_client as shipped (section `load (raw client)`).",
        ]
    )
    if not args.no_write:
        write_section("load", intro)
    for part in parts:
        title = part + (" (raw client)" if args.raw_client else "")
        body = f"### {title}\n\nLast run: {machine()}.\n\n" + runs[part]()
        print(body, flush=True)
        if not args.no_write:
            write_section(f"load-{part}" + ("-raw-client" if args.raw_client else ""), body)


if __name__ == "__main__":
    main()

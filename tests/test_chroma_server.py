"""Chroma client/server mode against a real `chroma run` on a free loopback port.

Ingest, ask and re-ingest go through HttpClient; the lexical index is derived from the server's
collection, so a second app with its own (empty) local store folder answers too.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.helpers import CORPUS, free_port, row_for
from talentbot import TalentBot
from talentbot.cli import app
from talentbot.errors import ConfigError, StoreError, StoreLockedError
from talentbot.index_cache import FRESH_S
from talentbot.store_lease import LEASE_ID, IngestLease

CHROMA = Path(sys.executable).with_name("chroma")
FILES = [
    "shanghai-rencai-liudong-tiaoli.md",
    "beijing-rencai-shichang-guanli-tiaoli.md",
    "shanxi-kaifaqu-rencai-2024-03-28.txt",
]
Q_SHANGHAI = "《上海市人才流动条例》自哪一天起施行？"  # written for these tests; its answer is the eval row's
SHANGHAI_DATE = row_for("When did the Shanghai Regulations on Talent Mobility")["a"][0]
Q_ADDED = "长风人才驿站哪一天起开放？"
ADDED = "\n第三十一条 长风人才驿站自2025年7月15日起开放，为来京求职的人才提供免费短期住宿。\n"


class ChromaServer:
    """A `chroma run` subprocess; ``url`` once its heartbeat answers."""

    def __init__(self, path: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(CHROMA), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=2) as r:
                    if r.status == 200 and "heartbeat" in r.read().decode():
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"chroma run did not come up: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def chroma_server(tmp_path):
    server = ChromaServer(tmp_path / "chroma-data", tmp_path / "chroma.log")
    try:
        yield server
    finally:
        server.stop()


def _corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in FILES:
        shutil.copy(CORPUS / name, folder / name)
    return folder


def _cites(answer, figure: str, file: str) -> None:
    assert not answer.no_answer, answer.text
    assert figure in answer.text
    assert any(c.file == file and figure in c.text for c in answer.citations), answer.citations


@pytest.mark.slow
@pytest.mark.model
def test_ingest_ask_reingest_and_a_second_app_through_a_chroma_server(tmp_path, chroma_server):
    docs = _corpus(tmp_path)
    local = tmp_path / "app1"
    bot = TalentBot(store=local, chroma_url=chroma_server.url)

    first = bot.ingest([docs])
    assert (first.added, first.updated, first.unchanged, first.failed) == (3, 0, 0, [])
    assert first.chunks == bot.store.count() > 3
    assert not (local / "chroma.sqlite3").exists()  # the vectors live on the server, not in the local folder
    assert (tmp_path / "chroma-data" / "chroma.sqlite3").exists()

    _cites(bot.ask(Q_SHANGHAI), SHANGHAI_DATE, FILES[0])

    again = bot.ingest([docs])
    assert (again.added, again.updated, again.unchanged, again.embedded) == (0, 0, 3, 0)
    assert again.chunks == first.chunks

    with open(docs / FILES[1], "a", encoding="utf-8") as fh:
        fh.write(ADDED)
    edited = bot.ingest([docs])
    assert (edited.added, edited.updated, edited.unchanged, edited.removed) == (0, 1, 2, 0)
    assert edited.embedded > 0
    _cites(bot.ask(Q_ADDED), "2025年7月15日", FILES[1])

    # A second app process's view: another local folder, no lexical index yet, the same server.
    other = tmp_path / "app2"
    second = TalentBot(store=other, chroma_url=chroma_server.url)
    _cites(second.ask(Q_SHANGHAI), SHANGHAI_DATE, FILES[0])
    _cites(second.ask(Q_ADDED), "2025年7月15日", FILES[1])
    saved = json.loads((other / "lexical" / "talentbot" / "ids.json").read_text())
    assert len(saved["ids"]) == second.store.count() == edited.chunks  # rebuilt from the collection
    assert saved["generation"] == bot.store.state()["generation"]
    assert {r.file for r in second.articles()} == set(FILES)

    # A rebuild by the second app drops and re-creates the collections under the first one's feet:
    # the first reopens them and answers, with a lexical index of the new generation.
    (docs / FILES[2]).unlink()
    rebuilt = second.ingest([docs], rebuild=True)
    assert (rebuilt.added, rebuilt.chunks) == (2, second.store.count())
    time.sleep(1.1)  # another process's change is seen within a second (the retriever's freshness check)
    _cites(bot.ask(Q_ADDED), "2025年7月15日", FILES[1])
    assert bot.store.count() == rebuilt.chunks
    assert len(bot.retriever.index.ids) == rebuilt.chunks
    assert {r.file for r in bot.articles()} == set(FILES[:2])


@pytest.mark.slow
@pytest.mark.model
def test_cli_chroma_url_flag(tmp_path, chroma_server):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(CORPUS / FILES[0], docs / FILES[0])
    runner = CliRunner()
    url = ["--chroma-url", chroma_server.url]
    ingest = runner.invoke(app, ["ingest", str(docs), *url, "--json"])
    assert ingest.exit_code == 0, ingest.output
    assert json.loads(ingest.stdout)["added"] == 1

    asked = runner.invoke(app, ["ask", Q_SHANGHAI, *url, "--store", str(tmp_path / "elsewhere"), "--json"])
    assert asked.exit_code == 0, asked.output
    answer = json.loads(asked.stdout)
    assert SHANGHAI_DATE in answer["answer"]
    assert any(SHANGHAI_DATE in c["text"] for c in answer["citations"])

    unchanged = runner.invoke(app, ["ingest", str(docs), *url, "--json"])
    assert json.loads(unchanged.stdout)["unchanged"] == 1
    # the environment's store folder (TALENTBOT_STORE) only holds the ingest lock and the lexical cache
    assert not any(
        p.name == "chroma.sqlite3" for p in tmp_path.rglob("chroma.sqlite3") if "chroma-data" not in p.parts
    )


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1:8000", "127.0.0.1:8000", "http://127.0.0.1:99999", "http://user:secret@127.0.0.1:8000"],
)
def test_a_bad_chroma_url_is_a_config_error(tmp_path, url):
    with pytest.raises(ConfigError, match="TALENTBOT_CHROMA_URL") as err:
        TalentBot(store=tmp_path / "s", chroma_url=url).store.count()
    assert "secret" not in str(err.value)
    result = CliRunner().invoke(app, ["ask", "人才公寓有哪些支持方式？", "--chroma-url", url])
    assert result.exit_code == 2
    assert "TALENTBOT_CHROMA_URL" in result.output
    assert "Traceback" not in result.output
    assert "secret" not in result.output


def test_an_unreachable_server_is_a_clear_store_error(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(
        StoreError, match=r"cannot reach the Chroma server at http://127\.0\.0\.1:\d+.*chroma run"
    ):
        TalentBot(store=tmp_path / "s", chroma_url=url).ask("人才公寓有哪些支持方式？")
    for command in (["ask", "人才公寓有哪些支持方式？"], ["ingest", str(CORPUS)]):
        result = CliRunner().invoke(app, [*command, "--chroma-url", url])
        assert result.exit_code == 3, result.output
        assert result.output.startswith("error: cannot reach the Chroma server")
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)  # typer.Exit, no crash


@pytest.mark.slow
@pytest.mark.model
def test_a_server_that_goes_away_mid_session_gives_a_store_error(tmp_path, chroma_server):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(CORPUS / FILES[0], docs / FILES[0])
    bot = TalentBot(store=tmp_path / "app", chroma_url=chroma_server.url)
    bot.ingest([docs])
    _cites(bot.ask(Q_SHANGHAI), SHANGHAI_DATE, FILES[0])
    chroma_server.stop()
    # the passages are read from the copy saved with the index: the store is asked again for its generation
    # once the last check is FRESH_S old
    time.sleep(FRESH_S + 0.1)
    with pytest.raises(StoreError, match=r"Chroma server at http://127\.0\.0\.1:\d+.*chroma run"):
        bot.ask(Q_SHANGHAI)


@pytest.mark.slow
@pytest.mark.model
def test_ingests_from_two_app_hosts_take_turns_through_the_server_lease(tmp_path, chroma_server):
    docs = _corpus(tmp_path)
    a = TalentBot(store=tmp_path / "host-a", chroma_url=chroma_server.url)
    b = TalentBot(
        store=tmp_path / "host-b", chroma_url=chroma_server.url
    )  # its own folder: its own file lock
    other = IngestLease(a.store, owner="app-host-2:4242", settle=0.05)
    assert other.acquire() is None  # an ingest running on another host
    with pytest.raises(
        StoreLockedError, match="another ingest \\(app-host-2:4242\\) is writing to the Chroma server"
    ):
        b.ingest([docs])
    assert b.store.manifest() == {}  # nothing written
    other.release()
    assert other.holder() is None
    assert b.ingest([docs]).added == 3
    assert other.holder() is None  # given back after the ingest

    # a lease left by a process of this host that no longer exists is taken over at once ...
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    a.store.put_record(
        LEASE_ID,
        {
            "kind": "lease",
            "owner": f"{socket.gethostname()}:{dead.stdout.strip()}",
            "expires": time.time() + 600,
        },
    )
    assert a.ingest([docs]).unchanged == 3
    # ... and so is one that ran out
    a.store.put_record(LEASE_ID, {"kind": "lease", "owner": "app-host-2:4242", "expires": time.time() - 1})
    assert a.ingest([docs]).unchanged == 3
    assert other.holder() is None


@pytest.mark.slow
@pytest.mark.model
def test_two_hosts_taking_the_lease_at_once_get_exactly_one_winner_who_renews_it(tmp_path, chroma_server):
    a = TalentBot(store=tmp_path / "host-a", chroma_url=chroma_server.url)
    b = TalentBot(store=tmp_path / "host-b", chroma_url=chroma_server.url)
    a.store.count()  # create the collections
    rivals = [
        IngestLease(a.store, owner="h1:1", renew_every=0.1),
        IngestLease(b.store, owner="h2:2", renew_every=0.1),
    ]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda lease: lease.acquire(), rivals))
    assert sorted(r is None for r in results) == [False, True]
    winner = rivals[results.index(None)]
    loser_saw = next(r for r in results if r is not None)
    assert loser_saw["owner"] == winner.owner
    first = winner.holder()["expires"]
    time.sleep(0.5)
    assert winner.holder()["expires"] > first  # renewed while held
    winner.release()
    assert winner.holder() is None
    # a holder whose lease was taken over (it ran out) stops renewing and never removes the new one
    again = IngestLease(a.store, owner="h1:1", renew_every=0.1)
    assert again.acquire() is None
    a.store.put_record(LEASE_ID, {"kind": "lease", "owner": "h3:3", "expires": time.time() + 60})
    time.sleep(0.5)
    assert again.holder()["owner"] == "h3:3"
    again.release()
    assert again.holder()["owner"] == "h3:3"

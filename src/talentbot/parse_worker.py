"""Parsing under a time and memory limit: PDF, Word, Excel, HTML/MHTML and image files are parsed in a
worker process.

Those formats run third-party parsers (pypdf, pdfplumber, python-docx/lxml, openpyxl, trafilatura, the OCR
engine) whose cost a small hostile
file can blow up. :class:`Parser` sends each such file's bytes to one long-lived worker
(``python -m talentbot.parse_worker``) whose address space is capped (``RLIMIT_AS``), and waits at most
``Limits.timeout_s``: a worker that runs over is killed and a fresh one starts for the next file. The same
works from the CLI and from a server thread (no signals, no fork). Text formats are parsed in-process:
their cost is linear in the capped size and their YAML can't expand (see :mod:`talentbot.limits`).

Protocol (binary pipes): the parent writes a JSON header line ``{"name", "size", "limits"}`` then ``size``
bytes; the worker answers one JSON line ``{"article": {...}, "notes": [...]}`` or ``{"error": reason}``
(``"retry": true`` when the file is not at fault, e.g. OCR is not installed), after any number of
``{"progress": [done, total]}`` lines while it OCRs pages. Once OCR has started, the file may take
``Limits.ocr_timeout_s`` more seconds (the worker stops reading pages by then; this side kills it past that
plus ``Limits.timeout_s``), and the worker's memory cap rises to ``Limits.ocr_memory_mb``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any, cast

from .limits import Limits, LoadError, ParseError
from .loaders import Article, parse, read_file
from .ocr import PROGRESS, OcrMissing

logger = logging.getLogger(__name__)

WORKER_SUFFIXES = frozenset(
    {".pdf", ".docx", ".xlsx", ".html", ".htm", ".mhtml", ".mht", ".png", ".jpg", ".jpeg"}
)
_PARSER_MODULES = {
    ".pdf": ("pypdf", "pdfplumber"),
    ".docx": ("docx",),
    ".xlsx": ("openpyxl",),
    ".html": ("trafilatura",),
    ".htm": ("trafilatura",),
    ".mhtml": ("trafilatura",),
    ".mht": ("trafilatura",),
    ".png": ("PIL.Image",),
    ".jpg": ("PIL.Image",),
    ".jpeg": ("PIL.Image",),
}
_PRELOADABLE = frozenset(m for mods in _PARSER_MODULES.values() for m in mods)
PageProgress = Callable[[Path, int, int], None]
START_TIMEOUT = 60.0  # seconds for a worker to start (interpreter + imports), outside the per-file limit


class Parser:
    """Loads files for one ingest run: text in-process, PDF/Word/Excel/HTML/images in a capped worker process.

    Use as a context manager (or call :meth:`close`). Given the files to come, the worker starts at once and
    imports their parsers while this process reads the text files; else it starts on first need.
    ``on_page(path, done, total)`` is called before each page the worker OCRs (progress of a long file).
    """

    def __init__(
        self, limits: Limits, files: Iterable[Path] = (), on_page: PageProgress | None = None
    ) -> None:
        self.limits = limits
        self.on_page = on_page
        self._preload = sorted({m for p in files for m in _PARSER_MODULES.get(p.suffix.lower(), ())})
        self._worker: _Worker | None = None
        self.started = 0  # worker processes started (tests and benchmarks read it)
        if self._preload:
            try:
                self._start()
            except LoadError as e:  # tried again, and reported per file, when a file needs it
                logger.warning("%s", e)

    def _start(self) -> _Worker:
        if self._worker is not None:
            self._worker.stop()  # reap the one that ended
        self._worker = None
        try:
            self._worker = _Worker(self.limits.memory_mb, self._preload)
        except OSError as e:
            raise LoadError(f"cannot start the parser worker: {e.strerror or e}") from e
        self.started += 1
        return self._worker

    def load(self, path: Path) -> Article:
        """Read and parse one file. :class:`ParseError` when its content is at fault, else :class:`LoadError`."""
        data = read_file(path, self.limits)
        if path.suffix.lower() not in WORKER_SUFFIXES:
            return parse(path, data, self.limits)
        worker = self._worker if self._worker is not None and self._worker.alive() else self._start()
        article = _article(
            path, worker.request(path.name, data, self.limits, lambda d, t: self._page(path, d, t))
        )
        for note in article.notes:
            logger.warning("%s: %s", path.name, note)
        return article

    def _page(self, path: Path, done: int, total: int) -> None:
        logger.info("%s: OCR page %d of %d", path.name, done + 1, total)
        if self.on_page is not None:
            self.on_page(path, done, total)

    def close(self) -> None:
        """Stop the worker, if one runs."""
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def __enter__(self) -> Parser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _article(path: Path, reply: dict) -> Article:
    a = reply["article"]
    return Article(
        path=path,
        title=a["title"],
        pages=[(n, t) for n, t in a["pages"]],
        source=a["source"],
        date=a["date"],
        metadata=dict(a["metadata"]),
        notes=list(reply.get("notes", [])),
    )


class _Worker:
    """One worker process and the thread that reads its answers."""

    def __init__(self, memory_mb: int, preload: list[str]) -> None:
        # The worker needs none of our settings (an API key stays out of its reach), and with -P it never
        # imports a module from the current folder.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TALENTBOT_")}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")) if p
        )
        self.memory_mb = memory_mb
        self.proc = subprocess.Popen(  # our own module, run by our own interpreter
            [sys.executable, "-P", "-m", "talentbot.parse_worker", str(memory_mb), *preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.stdin = cast(IO[bytes], self.proc.stdin)  # both pipes exist: PIPE above
        self.stdout = cast(IO[bytes], self.proc.stdout)
        self.replies: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(
            target=self._read, args=(self.stdout,), daemon=True, name="talentbot-parse-reader"
        ).start()
        self._ready = False

    def _read(self, stream: IO[bytes]) -> None:
        try:
            for line in stream:
                self.replies.put(line)
        except (OSError, ValueError):  # closed by stop() while reading
            pass
        self.replies.put(None)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _reply(self, timeout: float) -> dict | None:
        try:
            line = self.replies.get(timeout=timeout)
        except queue.Empty:
            return None
        if line is None:
            rc = self.proc.wait()
            raise ParseError(
                f"the parser stopped (exit code {rc}): the file is damaged or needs more than "
                f"{self.memory_mb} MB of memory (TALENTBOT_PARSE_MEMORY_MB)"
            )
        return json.loads(line)

    def request(self, name: str, data: bytes, limits: Limits, progress: Callable[[int, int], None]) -> dict:
        if not self._ready:
            try:
                ready = self._reply(START_TIMEOUT)
            except ParseError:
                ready = None
            if ready is None:  # not the file's fault: not remembered as a failed file
                self.stop()
                raise LoadError(
                    f"the parser worker did not start ({sys.executable} -P -m talentbot.parse_worker)"
                )
            self._ready = True
        header = json.dumps({"name": name, "size": len(data), "limits": asdict(limits)}).encode() + b"\n"
        try:
            self.stdin.write(header)
            self.stdin.write(data)
            self.stdin.flush()
        except OSError as e:
            self.stop()
            raise LoadError(f"the parser worker stopped: {e}") from e
        reply = self._reply(limits.timeout_s)
        ocr_deadline = None
        while reply is not None and "progress" in reply:  # OCR under way: its own time cap from here on
            if ocr_deadline is None:
                ocr_deadline = time.monotonic() + limits.ocr_timeout_s + limits.timeout_s
            progress(*reply["progress"])
            reply = self._reply(max(0.0, ocr_deadline - time.monotonic()))
        if reply is None:
            self.stop()
            if ocr_deadline is not None:
                raise ParseError(
                    f"OCR took longer than {limits.ocr_timeout_s:g} s; raise TALENTBOT_OCR_TIMEOUT "
                    "to allow more"
                )
            raise ParseError(
                f"parsing took longer than {limits.timeout_s:g} s (a decompression bomb or a "
                "pathological file?); raise TALENTBOT_PARSE_TIMEOUT to allow more"
            )
        if "error" in reply:
            if reply.get(
                "restart"
            ):  # the worker exits after this answer: wait for it, start afresh next time
                self.stop()
            raise (LoadError if reply.get("retry") else ParseError)(reply["error"])
        return reply

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.stdin.close()
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.stdin, self.stdout):
            with contextlib.suppress(OSError):
                stream.close()


# ----------------------------------------------------------------------------------- the worker side
def _serve(memory_mb: int, preload: list[str]) -> None:
    """The worker's loop: cap this process's memory, import the parsers it will need (before it says it is
    ready, so that imports don't count against a file's time), then parse requests until stdin closes."""
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = memory_mb * 2**20
        resource.setrlimit(
            resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard)
        )
    except (ImportError, ValueError, OSError):  # no RLIMIT_AS here: the time limit still holds
        pass
    inp = sys.stdin.buffer
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a parser prints goes where stderr goes, never into the answers
    logging.disable(logging.CRITICAL)  # parsers' warnings about damaged files: the reply carries the reason
    for name in preload:
        if name in _PRELOADABLE:
            with contextlib.suppress(
                ImportError
            ):  # an optional parser: the file's reply says what is missing
                importlib.import_module(name)
    out.write(b'{"ready": true}\n')
    out.flush()

    def report(done: int, total: int) -> None:
        out.write(json.dumps({"progress": [done, total]}).encode() + b"\n")
        out.flush()

    PROGRESS.set(report)
    while header := inp.readline():
        req = json.loads(header)
        data = inp.read(req["size"])
        try:
            a = parse(Path(req["name"]), data, Limits.from_dict(req["limits"]))
            reply: dict[str, Any] = {
                "article": {
                    "title": a.title,
                    "pages": a.pages,
                    "source": a.source,
                    "date": a.date,
                    "metadata": a.metadata,
                },
                "notes": a.notes,
            }
        except OcrMissing as e:
            reply = {"error": str(e), "retry": True}
        except LoadError as e:
            reply = {"error": str(e)}
        except MemoryError:
            reply = {
                "error": f"parsing needs more than {memory_mb} MB of memory (a decompression bomb?); "
                "raise TALENTBOT_PARSE_MEMORY_MB to allow more",
                "restart": True,
            }
        except RecursionError:
            reply = {"error": "the file is nested too deeply to parse"}
        out.write(json.dumps(reply).encode() + b"\n")
        out.flush()
        if reply.get("restart"):
            return  # a process that ran out of memory starts afresh for the next file


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.argv[2:])

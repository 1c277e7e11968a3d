"""Synthetic corpora made of variations of the real corpus, so that lexical statistics stay realistic.

Regulations are rebuilt from the real 第X条 bodies, shuffled across articles (and, half of the time,
their sentences mixed with those of other articles); place names are swapped and numbers changed.
News articles are assembled from the sentences of the real news article and of the regulations.
Every synthetic corpus also holds a copy of the real corpus, so that the eval questions keep their
answers (with thousands of look-alike distractors around them).

The corpus is generated once per (size, seed, generator version) under ``benchmarks/out/corpora``;
its description sits beside it (``synth-<N>.json``), not inside it, so that ingest never sees it.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

VERSION = 3

PROVINCES = (
    "北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 广东 "
    "海南 四川 贵州 云南 陕西 甘肃 青海"
).split()
CITIES = (
    "广州 深圳 杭州 郑州 洛阳 新乡 南京 苏州 武汉 成都 西安 太原 大同 忻州 济南 青岛 厦门 宁波 合肥 长沙 "
    "昆明 南昌 福州 贵阳 兰州 沈阳 大连 长春 石家庄 无锡 常州 温州 绍兴 佛山 东莞 珠海 烟台 潍坊 临汾 运城 "
    "长治 晋城 绛县 古县 岢岚 襄垣 芜湖 泉州 惠州 中山 嘉兴 台州 金华 扬州 徐州 南通"
).split()
# Place names of the real corpus that get swapped (longest first, so 郑洛新 wins over 郑州).
_SOURCE_PLACES = sorted(
    set(PROVINCES + CITIES + ["郑洛新", "中关村", "知识城", "中新广州"]), key=len, reverse=True
)
_PLACE_RE = re.compile("|".join(map(re.escape, _SOURCE_PLACES)))
_YEAR_RE = re.compile(r"(?:19|20)\d\d(?=年)")
_NUM_RE = re.compile(r"\d+")
_ARTICLE_RE = re.compile(r"^(第[一二三四五六七八九十百千零〇两\d]+条)[\s　]*(.*)$")
_CHAPTER_RE = re.compile(r"^第[一二三四五六七八九十百千零〇两\d]+章[\s　]*(.*)$")
_SENT_RE = re.compile(r".*?(?:[。！？；!?]+[”’」』）)]*|$)", re.S)
_DIGITS = "零一二三四五六七八九"


def zh_number(n: int) -> str:
    """1 -> 一, 12 -> 十二, 45 -> 四十五, 108 -> 一百零八 (as in 第X条)."""
    if n < 10:
        return _DIGITS[n]
    if n < 20:
        return "十" + (_DIGITS[n % 10] if n % 10 else "")
    if n < 100:
        return _DIGITS[n // 10] + "十" + (_DIGITS[n % 10] if n % 10 else "")
    rest = n % 100
    tail = (
        ""
        if rest == 0
        else (
            "零" + _DIGITS[rest] if rest < 10 else zh_number(rest) if rest >= 20 else "一" + zh_number(rest)
        )
    )
    return _DIGITS[n // 100] + "百" + tail


def _sentences(text: str) -> list[str]:
    return [s for s in (m.group(0).strip() for m in _SENT_RE.finditer(text)) if s]


class Pools:
    """Material taken from the real corpus."""

    def __init__(self, corpus: Path) -> None:
        self.clauses: list[list[str]] = []  # 第X条 bodies: list of paragraphs
        self.chapters: list[str] = []
        self.topics: list[str] = []
        self.sentences: list[str] = []
        self.news_paragraphs: list[str] = []
        self.headings: list[str] = []
        for path in sorted(corpus.iterdir()):
            if path.suffix not in (".md", ".txt"):
                continue
            text = path.read_text(encoding="utf-8")
            if text.startswith("---"):
                text = text.split("---", 2)[2]
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            if any(_ARTICLE_RE.match(ln) for ln in lines):
                self._regulation(lines)
            else:
                self._news(lines)
        self.sentences = [s for s in self.sentences if 6 <= len(s) <= 200]
        self.topics = sorted(set(self.topics)) or ["人才发展促进"]

    def _regulation(self, lines: list[str]) -> None:
        title = lines[0]
        topic = _PLACE_RE.sub("", title).replace("条例", "").strip("省市 ")
        if topic:
            self.topics.append(topic)
        current: list[str] | None = None
        for ln in lines[1:]:
            m = _CHAPTER_RE.match(ln)
            if m:
                self.chapters.append(m.group(1) or "总则")
                current = None
                continue
            m = _ARTICLE_RE.match(ln)
            if m:
                current = [m.group(2)] if m.group(2) else []
                self.clauses.append(current)
            elif current is not None:
                current.append(ln)
            self.sentences.extend(_sentences(m.group(2) if m else ln))

    def _news(self, lines: list[str]) -> None:
        for ln in lines:
            if 4 <= len(ln) <= 30 and not re.search(r"[。！？；!?:：,，A-Za-z0-9>]", ln):
                self.headings.append(ln)
            elif len(ln) > 40 and "。" in ln:
                self.news_paragraphs.append(ln)
                self.sentences.extend(_sentences(ln))


class Variator:
    """Swaps place names and numbers, consistently within one synthetic article."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.province = rng.choice(PROVINCES)
        self.city = rng.choice(CITIES)

    def __call__(self, text: str) -> str:
        rng = self.rng
        text = _PLACE_RE.sub(lambda m: self.province if m.group(0) in PROVINCES else self.city, text)
        text = _YEAR_RE.sub(lambda m: str(rng.randint(1995, 2025)), text)

        def number(m: re.Match) -> str:
            s = m.group(0)
            if len(s) == 4 and s[:2] in ("19", "20"):
                return s
            if len(s) == 1:
                return str(rng.randint(1, 9))
            return str(rng.randint(10 ** (len(s) - 1), 10 ** len(s) - 1))

        return _NUM_RE.sub(number, text)


def _regulation(pools: Pools, rng: random.Random, idx: int) -> tuple[str, str]:
    var = Variator(rng)
    place = var.city if rng.random() < 0.5 else var.province
    topic = rng.choice(pools.topics)
    year = rng.randint(2005, 2025)
    title = f"{place}{'市' if place in CITIES else '省'}{topic}条例"
    date = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    body = [
        title,
        "",
        f"{year}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日 {place}人民代表大会常务委员会"
        f"第{zh_number(rng.randint(1, 40))}次会议通过",
        "",
    ]
    n_articles = int(rng.triangular(6, 80, 30))
    chapter = 0
    for a in range(1, n_articles + 1):
        if a == 1 or rng.random() < 0.12:
            chapter += 1
            name = "总则" if chapter == 1 else rng.choice(pools.chapters)
            body += [f"第{zh_number(chapter)}章　{name}", ""]
        paragraphs = list(rng.choice(pools.clauses)) or [rng.choice(pools.sentences)]
        if rng.random() < 0.5:  # mix sentences across articles
            paragraphs = [
                "".join(rng.choice(pools.sentences) for _ in range(rng.randint(1, 4))) for _ in paragraphs
            ]
        paragraphs = [var(p) for p in paragraphs]
        body.append(f"第{zh_number(a)}条　{paragraphs[0]}")
        body += ["", *(p + "\n" for p in paragraphs[1:])]
    front = (
        f"---\ntitle: {title}\nsource: {place}人民代表大会常务委员会（合成基准语料 #{idx}）\n"
        f"date: {date}\n---\n"
    )
    return f"reg-{idx:06d}.md", front + "\n".join(body) + "\n"


def _news(pools: Pools, rng: random.Random, idx: int) -> tuple[str, str]:
    var = Variator(rng)
    year = rng.randint(2018, 2025)
    date = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    head = var(rng.choice(pools.headings)) if pools.headings else "人才工作新闻"
    title = f"{var.city}{head}"
    lines = [
        f"当前位置: 首页 >>新闻 >>{var.province}新闻",
        title,
        f"编辑:记者 来源:{var.province}日报客户端 发布时间:{date} 09:{rng.randint(10, 59)}:00",
        "",
    ]
    for _ in range(rng.randint(4, 22)):
        if pools.headings and rng.random() < 0.15:
            lines += [var(rng.choice(pools.headings)), ""]
        if pools.news_paragraphs and rng.random() < 0.3:
            sents = _sentences(rng.choice(pools.news_paragraphs))
            rng.shuffle(sents)
            para = "".join(sents)
        else:
            para = "".join(rng.choice(pools.sentences) for _ in range(rng.randint(2, 5)))
        lines += [var(para), ""]
    return f"news-{idx:06d}.txt", "\n".join(lines) + "\n"


def count_chunks(path: Path, chunk_size: int, overlap: int) -> tuple[int, int]:
    """(chunks, characters of indexed text) of one file, with talentbot's own loader and chunker."""
    from talentbot.chunking import chunk_article
    from talentbot.loaders import load

    chunks = chunk_article(load(path), chunk_size, overlap)
    return len(chunks), sum(len(c.indexed_text) for c in chunks)


def make_corpus(
    target_chunks: int, real_corpus: Path, out_root: Path, chunk_size: int, overlap: int, seed: int = 5
) -> dict:
    """Generate (or reuse) a corpus of about ``target_chunks`` chunks; return its description."""
    folder = out_root / f"synth-{target_chunks}"
    params = {
        "version": VERSION,
        "target": target_chunks,
        "seed": seed,
        "chunk_size": chunk_size,
        "overlap": overlap,
    }
    info_file = out_root / f"synth-{target_chunks}.json"
    if info_file.exists():
        info = json.loads(info_file.read_text())
        if info.get("params") == params and folder.is_dir():
            return {**info, "path": str(folder.resolve())}
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "real").mkdir(parents=True)
    (folder / "syn").mkdir()
    chunks = chars = articles = 0
    for p in sorted(real_corpus.iterdir()):
        if p.is_file() and not p.name.startswith("."):
            shutil.copyfile(p, folder / "real" / p.name)
            n, c = count_chunks(folder / "real" / p.name, chunk_size, overlap)
            chunks, chars, articles = chunks + n, chars + c, articles + 1
    pools = Pools(real_corpus)
    rng = random.Random(seed)
    idx = 0
    while chunks < target_chunks:
        name, text = (_regulation if rng.random() < 0.6 else _news)(pools, rng, idx)
        path = folder / "syn" / name
        path.write_text(text, encoding="utf-8")
        n, c = count_chunks(path, chunk_size, overlap)
        chunks, chars, articles, idx = chunks + n, chars + c, articles + 1, idx + 1
    info = {
        "params": params,
        "path": str(folder.resolve()),
        "articles": articles,
        "chunks": chunks,
        "chars": chars,
        "synthetic_articles": idx,
    }
    info_file.write_text(json.dumps(info, ensure_ascii=False, indent=1))
    return info

"""Chunking: 第X条 boundaries, labels, titles, sizes and whole sentences, checked against the source text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fixtures.helpers import CORPUS
from talentbot.chunking import chunk_article, split_sentences
from talentbot.loaders import Article, load

HENAN = CORPUS / "henan-rencai-liudong-tiaoli.md"
_NUM = "一二三四五六七八九十百千零"
_ARTICLE_LINE = re.compile(rf"^(第[{_NUM}]+条)[\s　]")
_CHAPTER_LINE = re.compile(rf"^第[{_NUM}]+章")
# An independent sentence splitter for the checks: a sentence ends after 。！？； (plus closing quotes).
_SENTENCE = re.compile(r"[^。！？；]*[。！？；]+[”’」』）)]*|[^。！？；]+$")


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _source_articles(path: Path) -> dict[str, tuple[str, list[str]]]:
    """Parse the regulation file by hand: label -> (chapter, paragraphs)."""
    text = path.read_text(encoding="utf-8").split("\n---\n", 1)[1]
    out: dict[str, tuple[str, list[str]]] = {}
    chapter, label = "", ""
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            continue
        if _CHAPTER_LINE.match(line):
            chapter, label = line, ""
            continue
        m = _ARTICLE_LINE.match(line)
        if m:
            label = m.group(1)
            assert label not in out, f"{label} appears twice in the source"
            out[label] = (chapter, [])
        if label:
            out[label][1].append(line)
    return out


def _sentence_spans(paragraphs: list[str]) -> list[tuple[int, int, int]]:
    """(start, end, length as written) of each sentence in the squashed concatenation of ``paragraphs``."""
    spans, at = [], 0
    for para in paragraphs:
        for s in _SENTENCE.findall(para.strip()):
            n = len(_squash(s))
            spans.append((at, at + n, len(s.strip())))
            at += n
    return spans


@pytest.fixture(scope="module")
def henan() -> Article:
    return load(HENAN)


@pytest.mark.parametrize("size", [220, 120, 40])
def test_regulation_chunks_follow_article_boundaries(henan, size):
    source = _source_articles(HENAN)
    assert len(source) == 46
    assert "第二十三条" in source
    chunks = chunk_article(henan, size=size)
    by_label: dict[str, list] = {}
    for c in chunks:
        if c.label:
            by_label.setdefault(c.label, []).append(c)
    assert set(by_label) == set(source)
    for label, (chapter, paragraphs) in source.items():
        mine = by_label[label]
        # All of the article's text, in order, and nothing from any other article.
        assert "".join(_squash(c.text) for c in mine) == _squash("".join(paragraphs)), label
        assert mine[0].text.startswith(label)
        for c in mine:
            assert c.chapter == chapter
            assert c.title == "河南省人才流动条例"
            assert len(c.text) <= size
            others = [m.group(0) for m in re.finditer(rf"(?:^|[。；])(第[{_NUM}]+条)[\s　]", c.text)]
            assert not [o for o in others if label not in o], f"{label} chunk holds another article: {c.text}"


@pytest.mark.parametrize("size", [220, 60, 40])
def test_regulation_chunks_never_cut_a_sentence_that_fits(henan, size):
    source = _source_articles(HENAN)
    chunks = chunk_article(henan, size=size)
    long_sentence_cuts = 0
    for label, (_, paragraphs) in source.items():
        spans = _sentence_spans(paragraphs)
        bounds = {s for s, _, _ in spans} | {e for _, e, _ in spans}
        at = 0
        for c in [c for c in chunks if c.label == label]:
            at += len(_squash(c.text))
            if at in bounds:
                continue
            length = next(n for s, e, n in spans if s < at < e)
            assert length > size, f"{label}: a {length}-char sentence cut at {size}"
            long_sentence_cuts += 1
    if size == 40:
        assert (
            long_sentence_cuts > 0
        )  # the regulation has sentences over 40 characters: they are the only cuts


def test_label_chapter_and_title_are_in_metadata_and_indexed_text(henan):
    chunks = chunk_article(henan, size=220)
    c23 = [c for c in chunks if c.label == "第二十三条"]
    assert len(c23) == 1
    c = c23[0]
    assert c.chapter == "第五章　人才流动行为规范"
    assert c.text.startswith("第二十三条 用人单位不得采用欺骗等不正当手段招聘人才")
    assert c.indexed_text.startswith("河南省人才流动条例 第五章　人才流动行为规范\n第二十三条")
    for c in chunks:
        assert c.indexed_text.startswith(c.title)
        assert c.label in c.indexed_text
        assert c.chapter in c.indexed_text
        assert c.indexed_text.endswith(c.text)
    # A passage that continues an article (a long one, at a small size) still names the article.
    cont = [c for c in chunk_article(henan, size=60) if c.label and not c.text.startswith(c.label)]
    assert cont
    for c in cont:
        assert c.header.endswith(c.label)
        assert c.indexed_text.startswith(c.header + "\n")


def test_a_one_line_note_is_not_lost_to_its_title():
    chunks = chunk_article(_article("人才落户只需身份证。", title="人才落户只需身份证。"), size=220)
    assert [c.text for c in chunks] == ["人才落户只需身份证。"]


def test_preamble_is_kept_without_a_label(henan):
    chunks = chunk_article(henan, size=220)
    assert chunks[0].label == ""
    assert "2000年9月27日" in chunks[0].text
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert all(c.title == "河南省人才流动条例" for c in chunks)


@pytest.mark.parametrize("path", sorted(CORPUS.iterdir()), ids=lambda p: p.stem)
def test_corpus_chunks_are_within_size_and_visible(path):
    article = load(path)
    for size in (220, 40):
        chunks = chunk_article(article, size=size)
        assert chunks
        for c in chunks:
            assert 0 < len(c.text) <= size
            assert re.search(r"[\w\u4e00-\u9fff]", c.text), f"invisible chunk {c.text!r}"
            assert "\u200b" not in c.text
            assert c.title == article.title


def _article(text: str, title: str = "Notice") -> Article:
    return Article(path=Path("x.txt"), title=title, pages=[(None, text)])


def test_english_sentences_are_packed_whole_and_spaces_count_toward_the_size():
    sentences = [f"Sentence {i:02d} is here!" for i in range(30)] + [
        f"Item {i:02d} ends here." for i in range(30)
    ]
    chunks = chunk_article(_article(" ".join(sentences)), size=60)
    assert len(chunks) > 10
    rebuilt = []
    for c in chunks:
        assert len(c.text) <= 60, c.text
        rebuilt += re.findall(r"[^!.]+[!.]", c.text)
    assert [s.strip() for s in rebuilt] == sentences


def test_an_over_long_sentence_is_cut_at_its_commas_or_into_even_pieces():
    clauses = "申请人应当具有博士学位，在本市全职工作满一年，依法缴纳社会保险，并且无不良信用记录。"
    chunks = chunk_article(_article(clauses), size=30)
    assert [c.text for c in chunks] == [
        "申请人应当具有博士学位，在本市全职工作满一年，",
        "依法缴纳社会保险，并且无不良信用记录。",
    ]
    just_over = "甲" * 40 + "。"  # 41 characters, no comma: two even halves, never a lone 。
    assert [len(c.text) for c in chunk_article(_article(just_over), size=40)] == [21, 20]
    english = "The fee of 1,000 yuan is paid at 12:30, and the rest is paid by the employer later."
    texts = [c.text for c in chunk_article(_article(english), size=50)]
    assert texts == ["The fee of 1,000 yuan is paid at 12:30,", "and the rest is paid by the employer later."]


def test_a_sentence_over_the_limit_is_the_only_thing_cut():
    long = "长" * 95 + "。"
    chunks = chunk_article(_article(f"短句一。{long}短句二。"), size=40)
    texts = [c.text for c in chunks]
    assert "".join(texts) == f"短句一。{long}短句二。"
    assert all(len(t) <= 40 for t in texts)
    assert texts[0].startswith("短句一。")
    assert texts[-1].endswith("短句二。")


def test_overlap_repeats_whole_trailing_sentences_within_the_size():
    sentences = [f"第{i:02d}句话讲人才补贴。" for i in range(20)]  # 11 characters each
    chunks = chunk_article(_article("".join(sentences)), size=50, overlap=12)
    assert len(chunks) > 4
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert len(nxt.text) <= 50
        last = split_sentences(prev.text)[-1]
        assert nxt.text.startswith(last), (prev.text, nxt.text)  # one 11-char sentence fits in 12
        assert not nxt.text.startswith(split_sentences(prev.text)[-2] + last)  # two (22 chars) do not
    without = chunk_article(_article("".join(sentences)), size=50)
    assert "".join(c.text for c in without) == "".join(sentences)


def test_news_article_is_cut_at_its_sub_headings():
    article = load(CORPUS / "shanxi-kaifaqu-rencai-2024-03-28.txt")
    chunks = chunk_article(article, size=220)
    labels = list(dict.fromkeys(c.label for c in chunks if c.label))
    assert labels == [
        "聚焦招才引智,校区合作引向深入",
        "建平台重孵化,成果共享为产业赋能",
        "强化奖励机制,激励企业创新突破",
    ]
    for c in chunks:
        assert c.title == article.title
        assert len(c.text) <= 220
        assert (
            not c.label or c.label not in c.text
        )  # the heading is in the header, not repeated in the passage

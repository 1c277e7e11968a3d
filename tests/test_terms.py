"""Term weights for coverage: a word the corpus never uses weighs what its rarity in general Chinese says
(jionlp's IDF table) on the corpus's scale; a word no dictionary lists keeps the full weight."""

from __future__ import annotations

from talentbot.lexical import LexicalIndex, tokenize
from talentbot.terms import general_idf, idf, term_groups

TEXTS = [
    "本办法自2025年1月1日起施行。",
    "对引进的博士给予住房补贴和生活补助。",
    "人才公寓租金减免，租期最长三年。",
    "企业家获颁荣誉证书。",
    "外地职工子女入学按规定办理。",
]


def _index() -> LexicalIndex:
    return LexicalIndex.build([f"c{i}" for i in range(len(TEXTS))], [tokenize(t) for t in TEXTS])


def test_the_general_table_is_read_from_the_installed_jionlp():
    table = general_idf()
    assert len(table) > 100_000
    assert float(table["的"]) < float(table["打算"]) < float(table["公积金"])


def test_an_unseen_common_word_weighs_less_than_an_unseen_name():
    index = _index()
    full = index.idf("\x00")  # what any word the corpus lacks weighed before
    for word in ("打算", "以前"):  # common words no text here uses
        assert word not in index.vocab
        assert 0 < idf(word, index) < full
    assert "琮璟苑" not in general_idf()  # a made-up estate name: no dictionary lists it
    assert idf("琮璟苑", index) == full
    assert idf("打算", index) < idf("公积金", index) <= full  # rarer in general text, heavier


def test_words_the_corpus_has_keep_their_corpus_weight():
    index = _index()
    assert idf("补贴", index) == index.idf("补贴")
    groups = {next(iter(g.alternatives)): g.weight for g in term_groups(["博士", "打算"], index)}
    assert groups["博士"] == index.idf("博士")
    assert groups["打算"] < index.idf("\x00")

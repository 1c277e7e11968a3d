"""English questions against Chinese documents: dictionary renderings (CC-CEDICT) with lemmas, phrases and
pinyin names, limited to what the index holds. Questions here are written for these tests."""

from __future__ import annotations

from talentbot.english import dictionary, index_senses, renderings, sense_key
from talentbot.lexical import LexicalIndex, query_tokens, tokenize

TEXTS = [
    "本办法自2025年1月1日起施行。",
    "对引进的博士给予住房补贴和生活补助。",
    "合肥市人才公寓租金减免。",
    "企业家获颁荣誉证书。",
]


def _index() -> LexicalIndex:
    return LexicalIndex.build([f"c{i}" for i in range(len(TEXTS))], [tokenize(t) for t in TEXTS])


def test_definitions_reduce_to_lookup_keys():
    assert sense_key("to take effect") == "take effect"
    assert sense_key("(in Hong Kong) bank account") == "bank account"
    senses = index_senses([("补贴", ["to subsidize", "subsidy", "CL:筆|笔[bi3]"]), ("猫", ["cat"])])
    assert senses["subsidy"] == frozenset({"补贴"})
    assert "cat" not in senses  # single characters are left out
    assert not any(k.startswith("cl") for k in senses)


def test_words_phrases_lemmas_and_pinyin_reach_the_chinese_words_of_the_index():
    index = _index()
    found = renderings(
        query_tokens("When did the measures took effect in Hefei, and what subsidies are given?"), index
    )
    assert "施行" in found["took"]  # 'took effect' -> take effect -> 生效/施行, only what the index holds
    assert "施行" in found["effect"]
    assert {"补贴", "补助"} & found["subsidies"]  # subsidies -> subsidy
    assert "合肥" in found["hefei"]  # a romanised name
    assert all(w in index.vocab for ws in found.values() for w in ws)


def test_a_word_without_rendering_in_the_index_renders_to_nothing():
    assert renderings(["spaceship"], _index()) == {"spaceship": frozenset()}
    assert renderings(["补贴"], _index()) == {}  # Chinese terms are not touched


def test_the_dictionary_is_bundled_and_read_once():
    first = dictionary()
    assert first is dictionary()
    assert "honorary" in sense_key("honorary (title)")
    assert any("证书" in ws for k, ws in first.items() if k == "certificate")


def test_a_name_the_documents_never_use_is_reported():
    from talentbot.evidence import unknown_names
    from talentbot.passages import TermGroup

    groups = [
        TermGroup(2.0, frozenset({"?lyon"})),
        TermGroup(1.0, frozenset({"补贴"})),
        TermGroup(1.0, frozenset({"?which"})),
    ]
    assert unknown_names("Which subsidies does Lyon pay to PhD graduates?", groups) == ["lyon"]
    assert unknown_names("Which subsidies are paid?", groups) == []  # the first word is capitalised anyway

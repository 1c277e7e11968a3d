"""Anchors: places (with their hierarchy), 《titles》, zones and years a question names, and which articles
may answer it. Fast: no model, no store."""

from __future__ import annotations

import pytest

from talentbot.anchors import Anchors, norm_title, place_codes, question_anchors, scope
from talentbot.places import gazetteer
from talentbot.store import ArticleRecord


def rec(key: str, title: str, source: str = "", date: str = "", places: str = "") -> ArticleRecord:
    r = ArticleRecord(key=key, path=f"/c/{key}.md", title=title, source=source, date=date, hash="h", chunks=1)
    if places:
        r.places = places  # type: ignore[attr-defined]
    return r


def names(codes) -> set[str]:
    g = gazetteer()
    return {g.name(c) for c in codes}


def test_places_carry_their_hierarchy():
    assert {"山西省", "忻州市", "定襄县"} <= names(place_codes("忻州市定襄县的人才公寓"))
    assert {"广东省", "深圳市"} <= names(place_codes("深圳经济特区人工智能产业促进条例"))
    assert "山西省" not in names(place_codes("河南省人才流动条例"))


@pytest.mark.parametrize(
    "text", ["中山大学的毕业生", "和平发展与新华社报道", "长安汽车的工程师", "城区人口增长"]
)
def test_ordinary_words_are_not_places(text):
    assert not question_anchors(text).places


@pytest.mark.parametrize(
    ("question", "place"),
    [
        ("北京对未经批准从事人才中介服务的罚款是多少？", "北京市"),
        ("杭州对引进人才发放多少住房补贴？", "杭州市"),
        ("定襄经济开发区有哪些人才政策？", "定襄县"),  # a county's short name before a zone word
        ("What housing subsidy does Hangzhou offer?", "杭州市"),  # pinyin of a city name
        ("臺灣的人才政策", "台湾省"),  # traditional characters are converted first (OpenCC)
        ("中山大学的人才政策", None),
    ],
)
def test_question_places(question, place):
    found = {n for _, codes in question_anchors(question).places for n in names(codes)}
    assert (place in found) if place else not found


def test_titles_zones_and_years():
    a = question_anchors("《广州市人才流动条例》自何时起施行？")
    assert a.titles == ("广州市人才流动条例",)
    assert not a.places
    a = question_anchors("某某自主创新示范区2021年给了多少补贴？")
    assert a.zones == ("某某自主创新",)
    assert a.years == ("2021",)
    assert norm_title("《上海市 人才流动条例（2021年修订）》") == "上海市人才流动条例"


MANIFEST = {
    "bj": rec("bj", "北京市人才市场管理条例"),
    "hn": rec("hn", "河南省人才流动条例"),
    "sh": rec("sh", "上海市人才流动条例", date="2020-01-01"),
    "dx": rec("dx", "开发区打造人才高地", places=",".join(place_codes("定襄县"))),
}


def no_text(_: str) -> set[str]:
    return set()


def first_word(phrase: str) -> str:
    return phrase[:3]


def test_scope_keeps_only_the_place_asked():
    s = scope(question_anchors("北京对未经批准从事人才中介服务的罚款是多少？"), MANIFEST, no_text, first_word)
    assert s.keys == {"bj"}
    assert s.missing is None


def test_scope_hierarchy_province_matches_county_article():
    s = scope(question_anchors("山西对开发区人才有什么奖励？"), MANIFEST, no_text, first_word)
    assert s.keys == {"dx"}


def test_scope_refuses_a_place_the_corpus_lacks_and_names_what_it_has():
    s = scope(question_anchors("杭州对引进人才发放多少住房补贴？"), MANIFEST, no_text, first_word)
    assert s.keys == set()
    assert "杭州" in s.missing
    assert "北京市" in s.missing
    assert "河南省" in s.missing


def test_scope_absent_title_names_documents_of_the_same_kind():
    s = scope(question_anchors("《广州市人才流动条例》自何时起施行？"), MANIFEST, no_text, first_word)
    assert s.keys == set()
    assert "《广州市人才流动条例》" in s.missing
    assert "《上海市人才流动条例》" in s.missing
    assert "《河南省人才流动条例》" in s.missing
    assert "北京市人才市场管理条例" not in s.missing  # another kind of document


def test_scope_present_title_and_title_quoted_in_text():
    s = scope(question_anchors("《上海市人才流动条例》自何时起施行？"), MANIFEST, no_text, first_word)
    assert s.keys == {"sh"}
    s = scope(
        question_anchors("《某某办法》是什么时候发布的？"),
        MANIFEST,
        lambda t: {"hn"} if t == "某某办法" else set(),
        first_word,
    )
    assert s.keys == {"hn"}


def test_scope_years_match_dates_or_text():
    s = scope(Anchors(years=("2020",)), MANIFEST, no_text, first_word)
    assert s.keys == {"sh"}
    s = scope(Anchors(years=("2019",)), MANIFEST, lambda t: {"bj"} if t == "2019" else set(), first_word)
    assert s.keys == {"bj"}


def test_scope_without_anchors_is_unrestricted():
    assert scope(question_anchors("人才公寓有哪些支持方式？"), MANIFEST, no_text, first_word).keys is None


def test_quoted_programme_names_are_anchors():
    a = question_anchors("某市“远航人才卡”持有人能享受哪些服务？")
    assert a.names == ("远航人才卡",)
    assert question_anchors("「远航人才卡」怎么申请").names == ("远航人才卡",)
    assert not question_anchors("“北京”的补贴是多少？").names  # a place in quotes is a place
    assert not question_anchors("人才公寓有哪些支持方式？").names


def test_scope_needs_the_quoted_name_in_the_article_text():
    holders = {"远航人才卡": {"hn"}}
    s = scope(
        question_anchors("“远航人才卡”怎么申请？"), MANIFEST, lambda t: holders.get(t, set()), first_word
    )
    assert s.keys == {"hn"}
    s = scope(
        question_anchors("“启明计划”人才有什么补贴？"), MANIFEST, lambda t: holders.get(t, set()), first_word
    )
    assert s.keys == set()
    assert "“启明计划”" in s.missing

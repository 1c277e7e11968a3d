"""Prefer the document in force (issue #12, item 6, last bullet): of two versions of a policy that answer,
the one that repeals the other, or the later one, is quoted, and the answer says so.

The policies are made up for these tests (real city names, so that they get regions); the store is a real
Chroma on disk with FakeEmbedder vectors, built once for the module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fixtures.fake_embedder import fake_bot_over
from talentbot import AnswerEvent, TalentBot
from talentbot.in_force import Supersession, Swap, lineage, note, prefer, title_stem
from talentbot.passages import Passage
from talentbot.store import ArticleRecord

OLD_SX = "绍兴市技能人才激励办法"
NEW_SX = "绍兴市技能人才激励办法（2023年修订）"
OLD_JX = "嘉兴市人才安居暂行办法"
NEW_JX = "嘉兴市人才安居办法"
DOCS = {
    "sx-2019.md": (
        OLD_SX,
        "2019-02-20",
        [
            "第一条 为激励技能人才成长，制定本办法。",
            "第二条 对新取得技师职业资格的人员，给予一次性奖励3000元。",
            "第三条 对获得市级技能大师工作室称号的单位，给予一次性资助20万元。",
            "第四条 本办法自2019年3月1日起施行。",
        ],
    ),
    "sx-2023.md": (
        NEW_SX,
        "2023-04-10",
        [
            "第一条 为激励技能人才成长，制定本办法。",
            "第二条 对新取得技师职业资格的人员，给予一次性奖励5000元。",
            f"第三条 本办法自2023年5月1日起施行，2019年3月1日起施行的《{OLD_SX}》同时废止。",
        ],
    ),
    "jx-2018.md": (
        OLD_JX,
        "2018-05-10",
        [
            "第一条 为做好人才安居工作，制定本办法。",
            "第二条 新引进的全日制博士研究生在本市购买首套住房的，可申请购房补贴20万元。",
            "第三条 本办法自2018年6月1日起施行。",
        ],
    ),
    "jx-2022.md": (
        NEW_JX,
        "2022-08-15",
        [
            "第一条 为做好人才安居工作，制定本办法。",
            "第二条 新引进的全日制博士研究生在本市购买首套住房的，可申请购房补贴40万元。",
            "第三条 本办法自2022年9月1日起施行。",
        ],
    ),
    "wz.md": (
        "温州市青年人才驿站管理办法",
        "2021-01-05",
        [
            "第一条 为服务来温青年人才，制定本办法。",
            "第二条 来温求职的高校毕业生，可以在青年人才驿站免费入住7天。",
            "第三条 本办法自2021年2月1日起施行。",
        ],
    ),
}


@pytest.fixture(scope="module")
def bot(tmp_path_factory) -> Iterator[TalentBot]:
    yield from fake_bot_over(tmp_path_factory.mktemp("in-force"), DOCS)


def _rec(
    key: str, title: str, effective: str = "", repeals: str = "", codes: str = "330600"
) -> ArticleRecord:
    return ArticleRecord(
        key, f"/d/{key}.md", title, "", "", "h", 1, region_codes=codes, effective=effective, repeals=repeals
    )


# ----------------------------------------------------------------------------------------------- lineage


def test_title_stem_drops_what_tells_versions_apart():
    assert title_stem("某市人才办法（2021年修订）") == title_stem("某市人才办法")
    assert title_stem("某市人才暂行办法") == title_stem("某市人才办法")
    assert title_stem("某市人才办法") != title_stem("某市人才工作条例")


def test_lineage_by_repeal_by_date_and_not_across_regions():
    manifest = {
        "a": _rec("a", "甲市人才条例", "2010-01-01"),
        "b": _rec("b", "甲市人才发展条例", "2020-01-01", repeals="甲市人才条例"),  # another title: by repeal
        "c": _rec("c", "甲市安居办法（试行）", "2015-01-01"),
        "d": _rec("d", "甲市安居办法", "2019-07-01"),
        "e": _rec("e", "甲市安居办法（2023年修订）", "2023-07-01"),  # a chain of three: all go to e
        "f": _rec("f", "乙市安居办法", "2011-01-01", codes="330300"),
        "g": _rec("g", "丙市补贴办法", "2018-01-01"),
        "h": _rec("h", "丙市补贴办法", "2018-01-01"),  # the same date: no telling which is in force
        "i": _rec("i", "丁市奖励办法", "2019-01-01", codes="330200"),
        "j": _rec("j", "丁市奖励办法", "2021-01-01", codes="330300"),  # other regions: not versions
    }
    out = lineage(manifest)
    assert out["a"] == Supersession("a", "b", True)
    assert out["c"] == Supersession("c", "e", False)
    assert out["d"] == Supersession("d", "e", False)
    assert set(out) == {"a", "c", "d"}


def test_note_wording():
    manifest = {"o": _rec("o", "某办法", "2019-03-01"), "n": _rec("n", "某办法（2023年修订）", "2023-05-01")}
    repealed = note(Swap(Supersession("o", "n", True)), manifest)
    assert "《某办法（2023年修订）》自2023年5月1日起施行" in repealed
    assert "废止《某办法》" in repealed
    later = note(Swap(Supersession("o", "n", False)), manifest)
    assert "晚于《某办法》" in later
    assert "2019年3月1日" in later
    kept = note(Swap(Supersession("o", "n", True), kept=True), manifest)
    assert "已被" in kept
    assert "旧文本" in kept
    assert "repeals" in note(Swap(Supersession("o", "n", True)), manifest, english=True)


def test_prefer_swaps_in_the_version_in_force_unless_the_question_names_the_old_ones_year():
    manifest = {"o": _rec("o", "某办法", "2019-03-01"), "n": _rec("n", "某办法（2023年修订）", "2023-05-01")}
    versions = lineage({**manifest, "n": _rec("n", "某办法（2023年修订）", "2023-05-01", repeals="某办法")})
    other = Passage("x:0", "其他", {"article": "x"}, 0.9, coverage=0.5)
    old = Passage("o:1", "旧", {"article": "o"}, 0.8, coverage=0.8)
    new = Passage("n:1", "新", {"article": "n"}, 0.7, coverage=0.8)
    weak = Passage("n:2", "无关", {"article": "n"}, 0.7, coverage=0.2)
    got, swaps = prefer([other, old], versions, manifest, lambda key: [new] if key == "n" else [])
    assert [p.id for p in got] == ["x:0", "n:1"]
    assert swaps == [Swap(Supersession("o", "n", True))]
    got, swaps = prefer([old, other], versions, manifest, lambda key: [weak])
    assert [p.id for p in got] == ["o:1", "x:0"]
    assert swaps[0].kept
    got, swaps = prefer([old], versions, manifest, lambda key: [new], question_years=("2019",))
    assert [p.id for p in got] == ["o:1"]
    assert not swaps


def test_the_store_reads_the_versions(bot):
    recs = {r.title: r for r in bot.articles()}
    assert recs[NEW_SX].repeals == OLD_SX
    out = lineage({r.key: r for r in bot.articles()})
    assert out[recs[OLD_SX].key].new == recs[NEW_SX].key
    assert out[recs[OLD_JX].key].new == recs[NEW_JX].key
    assert len(out) == 2


# ------------------------------------------------------------------------------------ through TalentBot


def _files(answer) -> set[str]:
    return {c.file for c in answer.citations}


def test_a_repealed_version_gives_way_to_the_one_that_repeals_it(bot):
    events = list(bot.stream("绍兴市对新取得技师职业资格的人员奖励多少钱？"))
    answer = events[-1].answer
    assert isinstance(events[-1], AnswerEvent)
    assert "".join(e.text for e in events[:-1]) == answer.text
    assert not answer.no_answer
    assert "5000元" in answer.text
    assert "3000元" not in answer.text
    assert _files(answer) == {"sx-2023.md"}
    last = answer.text.splitlines()[-1]
    assert f"《{NEW_SX}》" in last
    assert f"《{OLD_SX}》" in last
    assert "废止" in last


def test_a_later_version_is_preferred_to_an_earlier_one(bot):
    answer = bot.ask("嘉兴市新引进的全日制博士研究生购房补贴是多少？")
    assert not answer.no_answer
    assert "40万元" in answer.text
    assert "20万元" not in answer.text
    assert _files(answer) == {"jx-2022.md"}
    last = answer.text.splitlines()[-1]
    assert f"《{NEW_JX}》" in last
    assert f"《{OLD_JX}》" in last
    assert "较新" in last


def test_what_only_the_old_version_says_is_quoted_with_a_warning(bot):
    answer = bot.ask("绍兴市对获得技能大师工作室称号的单位资助多少？")
    assert not answer.no_answer
    assert "20万元" in answer.text
    assert _files(answer) == {"sx-2019.md"}
    last = answer.text.splitlines()[-1]
    assert "注意" in last
    assert f"《{NEW_SX}》" in last
    assert "废止" in last


def test_a_document_with_one_version_gets_no_line(bot):
    answer = bot.ask("温州市青年人才驿站可以免费入住几天？")
    assert not answer.no_answer
    assert "7天" in answer.text
    assert not any(w in answer.text for w in ("以上按", "注意", "废止", "较新"))


def test_english_answers_say_it_in_english(bot):
    answer = bot.ask("How much housing subsidy do doctoral graduates get in Jiaxing?")
    assert not answer.no_answer
    assert "40万元" in answer.text
    assert "20万元" not in answer.text
    assert "later version" in answer.text.splitlines()[-1]

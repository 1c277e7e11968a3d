"""Policy dates and regions as data (issue #12, item 6): read from every format's text, stored in the article
record, used by the filters (effective date; region hierarchy), and carried to citations as ``effective``.

The sentences here are written for these tests. Stores are in-memory Chroma with FakeEmbedder vectors."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.docs import make_docx
from fixtures.fake_embedder import use_fake_embedder
from fixtures.helpers import CORPUS
from talentbot import TalentBot
from talentbot.passages import Filters
from talentbot.places import gazetteer
from talentbot.policy_dates import policy_dates
from talentbot.regions import article_regions, region_matches, resolve

# ------------------------------------------------------------------------------------------------ dates


def test_header_lines_give_adoption_and_every_amendment():
    text = (
        "某省技术工人权益保护条例\n\n"
        "2001年6月20日 某省第九届人民代表大会常务委员会第二十三次会议通过\n"
        "2009年3月26日 某省第十一届人民代表大会常务委员会第八次会议通过的《关于修改〈某省技术工人权益保护条例〉"
        "的决定》第一次修正\n"
        "2017年11月30日 某省第十二届人民代表大会常务委员会第三十六次会议修订\n\n"
        "第一条 为了保护技术工人的合法权益，制定本条例。\n第五十条 本条例自2002年1月1日起施行。"
    )
    d = policy_dates(text)
    assert d.effective == "2002-01-01"
    assert d.adopted == "2001-06-20"
    assert d.amended == ("2009-03-26", "2017-11-30")
    assert d.expires == ""
    assert d.repeals == ()


def test_one_bracketed_header_line_with_genju_is_split_at_each_date():
    d = policy_dates(
        "（1996年8月2日某市第十届人民代表大会常务委员会第二十九次会议通过　根据2010年9月16日某市第十三届"
        "人民代表大会常务委员会第二十一次会议《关于修改部分地方性法规的决定》修正）\n第一条 ……"
    )
    assert (d.adopted, d.amended) == ("1996-08-02", ("2010-09-16",))


@pytest.mark.parametrize(
    ("sentence", "effective"),
    [
        ("第三十条 本办法自二〇〇〇年十二月一日起施行。", "2000-12-01"),
        (
            "本规定自二○一九年七月一日起实施。",
            "2019-07-01",
        ),  # a white circle for 〇, as many documents write it
        ("第十二条 自2021年10月8日起执行。", "2021-10-08"),
        ("以上措施自2023年1月1日起试行。", "2023-01-01"),
        ("本实施细则从2018年5月起正式施行。", "2018-05"),
    ],
)
def test_effective_date_in_any_numerals(sentence, effective):
    assert policy_dates(f"第一条 为促进人才发展，制定本办法。\n{sentence}").effective == effective


@pytest.mark.parametrize(
    "sentence",
    [
        "该条例自2016年3月1日起施行，受到企业欢迎。",  # a news report about another document
        "《某市人才工作条例》自2016年3月1日起施行以来，成效明显。",
        "依照2014年9月1日实施的《某省职业培训规定》执行。",  # 实施的: describes another document
    ],
)
def test_dates_of_other_documents_are_not_its_effective_date(sentence):
    assert policy_dates(f"记者从人社部门获悉。{sentence}").effective == ""


def test_a_date_mentioned_in_the_body_is_no_amendment():
    d = policy_dates(
        "第八条 根据2018年4月2日修订的《某省人才市场条例》，招聘会应当备案。\n第九条 本办法自2019年2月1日起施行。"
    )
    assert d.amended == ()
    assert d.effective == "2019-02-01"


def test_expiry_and_repeal():
    d = policy_dates(
        "第二十条 本办法自2021年3月1日起施行，有效期至2025年12月31日。"
        "2015年4月9日印发的《某市引进海外人才暂行办法》同时废止。"
    )
    assert d.effective == "2021-03-01"
    assert d.expires == "2025-12-31"
    assert d.repeals == ("某市引进海外人才暂行办法",)
    assert policy_dates("本通知自2020年5月1日起执行，执行期截至2022年4月30日。").expires == "2022-04-30"
    assert policy_dates("本意见于2026年1月1日起废止。").expires == "2026-01-01"


def test_effective_on_issue_takes_the_issue_date():
    assert policy_dates("第十五条 本办法自印发之日起施行。", issued="2022-08-08").effective == "2022-08-08"
    assert policy_dates("2022年9月9日 某市人民政府印发\n本办法自印发之日起施行。").effective == "2022-09-09"
    assert policy_dates("该办法自印发之日起施行。", issued="2022-08-08").effective == ""


# ---------------------------------------------------------------------------------------------- regions


def _names(codes: str) -> set[str]:
    return {gazetteer().by_code[c].short or gazetteer().by_code[c].name for c in codes.split(",") if c}


def test_title_places_come_first_with_the_divisions_above():
    names, codes = article_regions(
        "东莞市技能人才培养办法", "", "第一条 本市……深圳、广州、惠州的企业可以参照。"
    )
    assert names == "广东,东莞"
    assert _names(codes) == {"广东", "东莞"}


def test_untitled_text_gets_the_places_that_dominate_it_not_those_in_passing():
    text = (
        "佛山市将建设人才公寓。佛山的企业可以申请。佛山市南海区先行试点，顺德区随后推开。"
        "此前，杭州、成都已有类似做法；北京也在研究。"
    )
    names, _ = article_regions("人才公寓配租办法", "", text)
    assert names == "广东,佛山"


def test_a_long_text_naming_many_places_once_gets_none():
    text = "。".join(
        f"{p}的经验值得借鉴" for p in ("北京", "上海", "广州", "杭州", "成都", "武汉", "西安", "南京")
    )
    assert article_regions("各地人才政策综述", "", text * 1) == ("", "")


def test_source_names_the_region_when_title_and_text_do_not():
    assert (
        article_regions("人才驿站服务指南", "惠州市人力资源和社会保障局", "第一条 人才驿站提供服务。")[0]
        == "广东,惠州"
    )


def test_rencai_is_never_a_region():
    assert resolve("人才") == frozenset()
    names, _ = article_regions(
        "人才政策", "人才网", "人才人才人才，人才是第一资源。人才强省、人才强市。", declared="人才,浙江"
    )
    assert names == "浙江"
    assert article_regions("人才政策", "人才网", "人才人才人才，人才是第一资源。")[0] == ""


def test_region_filter_follows_the_hierarchy():
    _, guangzhou = article_regions("广州市青年人才条例", "", "")
    _, shenzhen = article_regions("深圳经济特区人才工作条例", "", "")
    names, nansha = article_regions("广州市南沙区人才办法", "", "")  # 南沙区 is also a district of Hainan
    assert names == "广东,广州,南沙区"
    assert region_matches("广东", "广东,广州", guangzhou)
    assert region_matches("广东省", "广东,深圳", shenzhen)
    assert region_matches("Guangdong", "广东,深圳", shenzhen)
    assert region_matches("广州", "", nansha)  # a district's article is about its city too
    assert not region_matches("广州", "广东,深圳", shenzhen)
    assert not region_matches("深圳", "广东,广州", guangzhou)
    assert not region_matches("广州", "广东", "440000")  # a province-wide article is not about one city
    assert not region_matches("人才", "广东,广州", guangzhou)
    assert region_matches("广东", "广东,广州", "")  # a record from before codes were kept: its names


# ------------------------------------------------------------------------------- ingest, filters, citations

HTML = """<html><head><title>人才公寓配租办法</title></head><body><article>
<h1>人才公寓配租办法</h1>
<p>第一条 为做好佛山市人才公寓配租工作，吸引各类人才到佛山创新创业，制定本办法。</p>
<p>第二条 佛山市人才公寓面向在本市工作的高层次人才、青年人才配租，租金按市场租金的五折确定。</p>
<p>第三条 申请人应当在本市无自有住房，并与本市用人单位签订一年以上劳动合同。</p>
<p>第十二条 本办法自2022年10月1日起实施。</p>
</article></body></html>"""

TXT = (
    "珠海市高层次人才安居补贴实施细则\n\n"
    "第一条 为吸引高层次人才来珠海创新创业，制定本细则。\n"
    "第二条 经认定的高层次人才，可以按规定申请安居补贴，每人每月三千元。\n"
    "第十条 本细则自二〇二三年三月一日起施行，有效期至2027年12月31日。\n"
)


def _pdf(path: Path, lines: list[str]) -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))  # a CID font reportlab knows: no font file
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.setFont("STSong-Light", 12)
    for i, line in enumerate(lines):
        c.drawString(72, 800 - 20 * i, line)
    c.save()
    path.write_bytes(buf.getvalue())


@pytest.fixture(scope="module")
def meta_bot(tmp_path_factory) -> Iterator[TalentBot]:
    """Four corpus regulations and four files of other formats without front matter, in an in-memory Chroma
    with FakeEmbedder vectors; built once for the module (the tests only read it)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from talentbot.store import Store

    tmp = tmp_path_factory.mktemp("policy-meta")
    docs = tmp / "docs"
    docs.mkdir()
    for name in (
        "henan-rencai-liudong-tiaoli.md",
        "guangzhou-qingnian-chuangxin-chuangye-tiaoli.md",
        "shenzhen-rengongzhineng-chanye-cujin-tiaoli.md",
        "beijing-rencai-shichang-guanli-tiaoli.md",
    ):
        shutil.copy(CORPUS / name, docs / name)
    (docs / "zhuhai.txt").write_text(TXT, encoding="utf-8")
    (docs / "foshan.html").write_text(HTML, encoding="utf-8")
    make_docx(
        docs / "shaoguan.docx",
        [
            "韶关市乡村人才振兴若干措施",
            "一、对到韶关市乡镇工作的大学毕业生给予一次性补贴。",
            "二、本措施自2024年7月1日起执行。",
        ],
        title="韶关市乡村人才振兴若干措施",
    )
    _pdf(
        docs / "huizhou.pdf",
        [
            "惠州市人才驿站管理办法",
            "第一条 为规范人才驿站管理，制定本办法。",
            "第九条 本办法自2024年5月1日起施行。",
        ],
    )
    client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False, allow_reset=True))
    client.reset()  # Chroma's ephemeral clients share one in-memory system
    with pytest.MonkeyPatch.context() as mp:
        use_fake_embedder(mp)
        mp.setattr("talentbot.bot.Store", lambda settings: Store(settings, client=client))
        bot = TalentBot(store=tmp / "store")
        report = bot.ingest([docs])
        assert not report.failed, report.failed
        yield bot
    client.reset()


def _by_file(bot: TalentBot) -> dict:
    return {r.file: r for r in bot.articles()}


def test_every_format_gets_regions_and_an_effective_date(meta_bot):
    recs = _by_file(meta_bot)
    expected = {
        "zhuhai.txt": ("广东,珠海", "2023-03-01"),
        "foshan.html": ("广东,佛山", "2022-10-01"),
        "shaoguan.docx": ("广东,韶关", "2024-07-01"),
        "huizhou.pdf": ("广东,惠州", "2024-05-01"),
    }
    for file, (region, effective) in expected.items():
        assert (recs[file].region, recs[file].effective) == (region, effective), file
    assert recs["zhuhai.txt"].expires == "2027-12-31"
    assert recs["beijing-rencai-shichang-guanli-tiaoli.md"].repeals  # its 同时废止 sentence


def test_henan_dates_are_stored_and_the_date_filter_uses_the_effective_date(meta_bot):
    henan = _by_file(meta_bot)["henan-rencai-liudong-tiaoli.md"]
    assert (henan.effective, henan.adopted, henan.amended) == ("2000-12-01", "2000-09-27", "2004-11-26")
    assert henan.date != henan.effective  # the front matter dates the amendment
    assert Filters(date_from="2000-12-01", date_to="2000-12-01").matches(henan)
    assert Filters(date_to="2000").matches(henan)
    assert not Filters(date_from="2004").matches(henan)
    got = meta_bot.retriever.search("人才流动", k=8, filters=Filters(date_to="2000"))
    assert got
    assert {p.meta["file"] for p in got} <= {
        "henan-rencai-liudong-tiaoli.md",
        "beijing-rencai-shichang-guanli-tiaoli.md",
    }


def test_province_filter_includes_its_cities_and_a_city_filter_excludes_others(meta_bot):
    recs = _by_file(meta_bot)
    guangdong = {f for f, r in recs.items() if Filters(region="广东").matches(r)}
    assert guangdong == {
        "guangzhou-qingnian-chuangxin-chuangye-tiaoli.md",
        "shenzhen-rengongzhineng-chanye-cujin-tiaoli.md",
        "zhuhai.txt",
        "foshan.html",
        "shaoguan.docx",
        "huizhou.pdf",
    }
    assert {f for f, r in recs.items() if Filters(region="广州").matches(r)} == {
        "guangzhou-qingnian-chuangxin-chuangye-tiaoli.md"
    }
    assert {f for f, r in recs.items() if Filters(region="深圳市").matches(r)} == {
        "shenzhen-rengongzhineng-chanye-cujin-tiaoli.md"
    }
    got = meta_bot.retriever.search("人才", k=20, filters=Filters(region="广东"))
    files = {p.meta["file"] for p in got}
    assert {
        "guangzhou-qingnian-chuangxin-chuangye-tiaoli.md",
        "shenzhen-rengongzhineng-chanye-cujin-tiaoli.md",
    } <= files
    assert files <= guangdong


def test_region_list_holds_only_places(meta_bot):
    g = gazetteer()
    regions = {
        x for r in meta_bot.articles() for x in r.region.split(",") if x
    }  # what the web dropdown lists
    assert "人才" not in regions
    assert {"河南", "北京", "广东", "广州", "深圳", "珠海", "佛山"} <= regions
    assert all(resolve(x) and all(c in g.by_code for c in resolve(x)) for x in regions)


def test_passages_carry_the_effective_date_for_citations(meta_bot):
    got = meta_bot.retriever.search("人才流动", k=3, filters=Filters(file="henan-rencai-liudong-tiaoli.md"))
    assert got
    assert all(p.meta["effective"] == "2000-12-01" for p in got)
    from talentbot.answer import Answer, Citation
    from talentbot.web_render import sources_html

    cite = Citation(n=1, title="t", source="s", date="2004-11-26", path="p", text="x", score=1.0)
    object.__setattr__(
        cite, "effective", "2000-12-01"
    )  # the field citation_for fills from p.meta["effective"]
    assert "2000-12-01" in sources_html(Answer(text="x [1]", no_answer=False, citations=[cite]), 1)

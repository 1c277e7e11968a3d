"""Tables (issue #14): PDF, Word, .xlsx and .csv rows carry their headers and title, stay whole in one chunk,
and are what an answer quotes and cites."""

from __future__ import annotations

import re

import pytest

from fixtures.realdocs import bot_over, sheet_xlsx, table_docx, table_pdf
from talentbot.chunking import chunk_article
from talentbot.limits import Limits, LoadError
from talentbot.loaders import load
from talentbot.tables import is_row, parse_row, row_line, table_lines

HEADERS = ["人才类别", "安家补贴", "发放方式"]
ROWS = [
    HEADERS,
    ["A类", "100万元", "分五年发放"],
    ["B类", "60万元", "分五年发放"],
    ["C类", "30万元", "分三年发放"],
]
MARK = re.compile(r"\[\d+\]")


def _row_of(text: str, category: str) -> str:
    """The row line of ``category`` in ``text`` (exactly one)."""
    found = [ln for ln in text.split("\n") if is_row(ln) and f"人才类别：{category}；" in ln]
    assert len(found) == 1, text
    return found[0]


# --------------------------------------------------------------------------------------- row lines
def test_every_row_carries_the_title_and_its_headers():
    lines = table_lines([["高层次人才安家补贴标准", None, None], *ROWS, ["注：补贴按年发放。", None, None]])
    assert lines[0] == "高层次人才安家补贴标准"  # the table's own title row, as text
    rows = [ln for ln in lines if is_row(ln)]
    assert len(rows) == len(ROWS) - 1
    for row, cells in zip(rows, ROWS[1:], strict=True):
        title, pairs = parse_row(row)
        assert title == "高层次人才安家补贴标准"
        assert pairs == list(zip(HEADERS, cells, strict=True))
    assert lines[-1] == "注：补贴按年发放"  # a note row stays text, not a row


def test_merged_cells_repeated_headers_and_sections():
    lines = table_lines(
        [
            HEADERS,
            ["一、顶尖人才", None, None],  # a section row: joins the title of the rows under it
            ["A类", "100万元", "分五年\n发放"],  # a wrapped cell
            [None, "另给予科研经费。", None],  # cells merged down from the row above (pdfplumber gives None)
            HEADERS,  # the header repeated on the next page
            ["B类", "60万元；一次性", "一次发放"],
        ],
        title="表2",
    )
    rows = [parse_row(ln) for ln in lines if is_row(ln)]
    assert rows[0] == (
        "表2·一、顶尖人才",
        [("人才类别", "A类"), ("安家补贴", "100万元"), ("发放方式", "分五年发放")],
    )
    assert rows[1][1] == [("人才类别", "A类"), ("安家补贴", "另给予科研经费"), ("发放方式", "分五年发放")]
    assert rows[2][1][1] == ("安家补贴", "60万元，一次性")  # no ；inside a value: the row stays parseable
    assert len(rows) == 3


def test_a_row_is_one_chunk_even_when_longer_than_the_chunk_size():
    from talentbot.loaders import Article

    long_value = "须在本市连续缴纳社会保险满三年且无违法记录" * 6
    row = row_line("申报条件", [("类别", "C类"), ("条件", long_value)])
    article = Article(
        path=__import__("pathlib").Path("t.md"),
        title="细则",
        pages=[(None, f"第一段说明申报的要求。\n{row}\n表后的说明文字。")],
    )
    chunks = chunk_article(article, size=60, overlap=20)
    assert row in [c.text for c in chunks]
    assert len(row) > 60
    assert not any(c.text != row and "C类" in c.text for c in chunks)  # no piece of the row elsewhere


# ------------------------------------------------------------------------------------------ loaders
def test_pdf_table_rows_keep_headers_title_page_and_the_text_around(tmp_path):
    path = table_pdf(
        tmp_path / "细则.pdf",
        "甲市高层次人才安家补贴实施细则",
        ["第一条 为吸引人才，制定本细则。"],
        "表1 高层次人才安家补贴标准",
        ROWS,
        ["第三条 本细则自发布之日起施行。"],
    )
    a = load(path)
    assert a.pages[0][0] == 1
    title, pairs = parse_row(_row_of(a.text, "C类"))
    assert title == "表1 高层次人才安家补贴标准"
    assert pairs == list(zip(HEADERS, ROWS[3], strict=True))
    text = a.text
    assert text.index("第一条") < text.index("【表1") < text.index("第三条")  # rows where the table stands
    assert "A类 100万元" not in text  # the table's cells are not also left as loose text


def test_docx_table_rows_merged_category_and_caption(tmp_path):
    rows = [
        HEADERS,
        ["A类", "100万元", "分五年发放"],
        ["B类", "60万元", "分五年发放"],
        ["C类", "30万元", "分三年发放"],
    ]
    path = table_docx(
        tmp_path / "办法.docx",
        ["乙市人才补贴办法", "补贴标准见下表。"],
        "表1 安家补贴标准",
        rows,
        merge_down=(2, 1, 2),
    )
    a = load(path)
    for category, cells in (("A类", rows[1]), ("B类", rows[2]), ("C类", rows[3])):
        title, pairs = parse_row(_row_of(a.text, category))
        assert title == "表1 安家补贴标准"
        assert pairs == list(zip(HEADERS, cells, strict=True))
    assert a.text.endswith("本表自发布之日起执行。")


def test_xlsx_sheets_numbers_and_percentages(tmp_path):
    path = sheet_xlsx(
        tmp_path / "一览表.xlsx",
        {
            "Sheet1": [
                ["丙市人才补贴一览表"],
                ["人才类别", "安家补贴（元）", "个税奖励比例"],
                ["A类", 1000000, 0.5],
                ["C类", 300000, 0.2],
            ],
            "租房补贴": [["人才类别", "每月补贴"], ["C类", "3000元"]],
        },
    )
    a = load(path)
    assert a.title == "丙市人才补贴一览表"
    rows = [parse_row(ln) for ln in a.text.split("\n") if is_row(ln)]
    assert (
        "丙市人才补贴一览表",
        [("人才类别", "C类"), ("安家补贴（元）", "300000"), ("个税奖励比例", "20%")],
    ) in rows
    assert ("租房补贴", [("人才类别", "C类"), ("每月补贴", "3000元")]) in rows


def test_csv_in_gbk_with_tabs(tmp_path):
    path = tmp_path / "补贴.csv"
    path.write_bytes("\n".join("\t".join(r) for r in ROWS).encode("gbk"))
    rows = [parse_row(ln) for ln in load(path).text.split("\n") if is_row(ln)]
    assert rows[-1] == ("补贴", list(zip(HEADERS, ROWS[3], strict=True)))


def test_a_spreadsheet_over_the_row_cap_is_refused_with_the_setting(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("\n".join(f"{i},{i * 2}" for i in range(50)), encoding="utf-8")
    with pytest.raises(LoadError, match="TALENTBOT_MAX_SHEET_ROWS") as err:
        load(path, limits=Limits(max_sheet_rows=20))
    assert "\n" not in str(err.value)
    xlsx = sheet_xlsx(tmp_path / "big.xlsx", {"Sheet1": [[i, i * 2] for i in range(50)]})
    with pytest.raises(LoadError, match="over 20 rows"):
        load(xlsx, limits=Limits(max_sheet_rows=20))


# ------------------------------------------------------------------------------- answered and cited
@pytest.fixture
def table_bot(tmp_path, monkeypatch, fake_embedder, ephemeral_client):
    docs = tmp_path / "docs"
    docs.mkdir()
    table_pdf(
        docs / "jia.pdf",
        "甲市高层次人才安家补贴实施细则",
        ["第一条 为吸引高层次人才，制定本细则。"],
        "表1 甲市高层次人才安家补贴标准",
        ROWS,
        ["第三条 本细则自发布之日起施行。"],
    )
    table_docx(
        docs / "yi.docx",
        ["乙县青年人才生活补贴办法", "生活补贴标准见下表。"],
        "表1 乙县青年人才生活补贴标准",
        [
            ["学历", "生活补贴", "补贴期限"],
            ["博士研究生", "每月5000元", "三年"],
            ["硕士研究生", "每月3000元", "三年"],
        ],
    )
    sheet_xlsx(
        docs / "bing.xlsx",
        {
            "Sheet1": [
                ["丙市人才租房补贴一览表"],
                ["人才层次", "租房补贴"],
                ["领军人才", "每月8000元"],
                ["骨干人才", "每月2500元"],
            ]
        },
    )
    (docs / "ding.csv").write_text(
        "丁区购房补贴标准\n人才等级,购房补贴\n一级,80万元\n二级,40万元\n", encoding="utf-8"
    )
    bot, report = bot_over(docs, tmp_path / "store", monkeypatch, ephemeral_client)
    assert report.added == 4, report.failed
    return bot


ASKED = [
    ("甲市C类人才的安家补贴是多少？", "jia.pdf", "人才类别：C类；安家补贴：30万元", "30万元"),
    ("乙县对硕士研究生的生活补贴是多少？", "yi.docx", "学历：硕士研究生；生活补贴：每月3000元", "每月3000元"),
    ("丙市骨干人才租房补贴多少？", "bing.xlsx", "人才层次：骨干人才；租房补贴：每月2500元", "每月2500元"),
    ("丁区二级人才的购房补贴是多少？", "ding.csv", "人才等级：二级；购房补贴：40万元", "40万元"),
]


@pytest.mark.parametrize(("question", "file", "row_has", "figure"), ASKED)
def test_an_answer_cites_the_whole_row_of_its_file(table_bot, question, file, row_has, figure):
    answer = table_bot.ask(question)
    assert not answer.no_answer, answer.text
    for line in answer.text.splitlines():
        cited = answer.citations[int(MARK.search(line).group(0)[1:-1]) - 1]
        assert cited.file == file
        assert is_row(cited.text)  # the chunk is the row, whole
        assert row_has in cited.text
        assert figure in cited.text
        quoted = MARK.sub("", line).split("：", 1)[-1] if line.startswith("据") else MARK.sub("", line)
        assert quoted.strip() in cited.text  # every line quotes the row
        if file.endswith(".pdf"):
            assert cited.page == 1


@pytest.mark.parametrize(("question", "file", "row_has", "figure"), ASKED)
def test_an_answer_quotes_the_whole_row(table_bot, question, file, row_has, figure):
    answer = table_bot.ask(question)
    assert row_has in answer.text
    assert figure in answer.text


@pytest.mark.slow  # starts the chat server
def test_a_spreadsheet_uploaded_in_the_chat_is_indexed_and_its_row_answered(
    tmp_path, monkeypatch, fake_embedder
):
    """The chat's upload takes the new formats too: a .csv table sent through the Gradio API is ingested and
    the row that answers is quoted whole and cited."""
    from gradio_client import Client, handle_file

    from fixtures.helpers import free_port
    from talentbot import TalentBot
    from talentbot.web import launch

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    csv = tmp_path / "戊区人才补贴.csv"
    csv.write_text(
        "人才类别,安家补贴,发放方式\nA类人才,80万元,分五年发放\nB类人才,50万元,分三年发放\n", encoding="utf-8"
    )
    bot = TalentBot(
        store=tmp_path / "store",
        corpus=tmp_path / "corpus",
        port=free_port(),
        allow_upload=True,
        fusion="lexical",
    )
    srv = launch(bot, block=False)
    try:
        c = Client(srv.url, verbose=False)
        summary, _ = c.predict([handle_file(str(csv))], api_name="/upload")
        c.close()
        assert "**added** 1" in summary
        answer = bot.ask("戊区B类人才的安家补贴是多少？")
        assert not answer.no_answer
        assert "50万元" in answer.text
        assert "B类人才" in answer.text  # the whole row, with its headers
        assert answer.citations[0].file.endswith(".csv")
    finally:
        srv.close()


def test_the_chat_renders_a_quoted_row_as_a_table_row():
    from talentbot.answer import Answer, Citation
    from talentbot.web_render import answer_markdown

    quote = row_line("表2 租房补贴", [("人才层次", "骨干人才"), ("租房补贴", "每月2500元")])
    cite = Citation(n=1, title="丙市办法", source="", date="", path="", text=quote, score=1.0, quote=quote)
    shown = answer_markdown(Answer(text=f"据《丙市办法》：{quote}[1]", no_answer=False, citations=[cite]), 0)
    assert "| 人才层次 | 租房补贴 |" in shown
    assert "| 骨干人才 | 每月2500元 |" in shown
    plain = Citation(
        n=1, title="丙市办法", source="", date="", path="", text="正文。", score=1.0, quote="正文。"
    )
    assert "|---|" not in answer_markdown(
        Answer(text="据《丙市办法》：正文。[1]", no_answer=False, citations=[plain]), 0
    )

"""Web pages as users save them (issue #14): text copied off three page layouts (a government site, a
Sohu article, a WeChat article) loses its furniture and keeps every body line; a saved .mhtml page is read by
trafilatura. Each is answered and cited."""

from __future__ import annotations

import re

import pytest

from fixtures.realdocs import bot_over, mhtml
from talentbot.loaders import load

GOV = """您的位置：首页 > 政务公开 > 政策文件
戊市高校毕业生就业见习补贴实施办法
发布日期：2024-04-12 来源：戊市人力资源和社会保障局 浏览次数：1024
【字体：大 中 小】 【打印】 【关闭】
为促进高校毕业生就业，现就就业见习补贴有关事项通知如下。
一、见习单位吸纳离校两年内未就业高校毕业生参加就业见习的，按每人每月1800元的标准给予见习补贴。
二、见习期满留用率达到50%以上的单位，见习补贴标准提高到每人每月2000元。
责任编辑：赵六
扫一扫在手机打开当前页
相关链接：戊市人才网
主办单位：戊市人民政府办公室 版权所有
"""
SOHU = """己县出台青年人才安居新政
2024-05-06 10:20 来源: 己县融媒体中心
发布于：浙江
己县近日出台青年人才安居新政，对新引进的全日制本科毕业生给予每月800元租房补贴，最长补贴三年。
对在己县首次购房的青年人才，按房价的3%给予购房补贴，最高不超过10万元。
返回搜狐，查看更多
责任编辑：
声明：该文观点仅代表作者本人，搜狐号系信息发布平台，搜狐仅提供信息存储空间服务。
阅读 (2345)
"""
WECHAT = """庚区发布高层次人才子女入学保障办法
原创 庚区人才办 庚区人才 2024-06-18 09:30 发表于北京
庚区近日发布高层次人才子女入学保障办法。
A类人才子女可在全区范围内选择一所公办学校就读，B类人才子女由区教育局统筹安排入学。
办法自2024年9月1日起施行。
阅读原文
预览时标签不可点
微信扫一扫关注该公众号
继续滑动看下一个
"""
PAGES = {
    "gov.txt": (
        GOV,
        ["您的位置", "浏览次数", "字体", "打印", "扫一扫", "相关链接", "主办单位", "责任编辑"],
        {"date": "2024-04-12", "source": "戊市人力资源和社会保障局"},
    ),
    "sohu.txt": (
        SOHU,
        ["返回搜狐", "发布于", "声明", "阅读 (", "责任编辑", "10:20"],
        {"date": "2024-05-06", "source": "己县融媒体中心"},
    ),
    "wechat.txt": (
        WECHAT,
        ["原创", "阅读原文", "预览时标签不可点", "微信扫一扫", "继续滑动"],
        {"date": "2024-06-18"},
    ),
}


def _body_lines(page: str) -> list[str]:
    """The lines of a page that are article text: sentences (they end in 。)."""
    return [ln for ln in page.splitlines() if ln.endswith("。") and not ln.startswith("声明")]


@pytest.mark.parametrize("name", sorted(PAGES))
def test_a_copied_page_loses_its_furniture_and_keeps_every_body_line(tmp_path, name):
    page, junk, fields = PAGES[name]
    path = tmp_path / name
    path.write_text(page, encoding="utf-8")
    a = load(path)
    assert a.title == page.splitlines()[1 if name == "gov.txt" else 0]
    for word in junk:
        assert word not in a.text, word
    for line in _body_lines(page):
        assert line in a.text  # the article body is never lost
    assert all(getattr(a, k) == v for k, v in fields.items())


def test_a_text_that_only_mentions_a_share_button_keeps_everything(tmp_path):
    text = (
        "人才驿站服务指南\n点击页面底部的分享按钮，可将本指南发给同事。\n分享到朋友圈前，请先阅读使用说明。\n"
    )
    path = tmp_path / "guide.txt"
    path.write_text(text, encoding="utf-8")
    a = load(path)
    for line in text.splitlines()[1:]:
        assert line in a.text


HTML = """<html><head><meta charset="utf-8"><title>辛市博士后资助政策</title></head><body>
<nav><a href="/">首页</a> &gt; <a href="/news">新闻</a></nav>
<article><h1>辛市博士后资助政策</h1>
<p>辛市对新进站的博士后研究人员，给予每人每年15万元生活资助，资助期限为两年。</p>
<p>出站后留辛市工作的博士后，一次性给予30万元安家补贴。博士后工作站建站单位给予50万元建站资助。</p>
</article><footer>版权所有 辛市人才工作领导小组办公室</footer></body></html>"""


def test_a_saved_mhtml_page_is_read_like_html_with_its_address(tmp_path):
    path = mhtml(tmp_path / "page.mhtml", HTML, "https://rc.example.gov.cn/news/2024/0301.html")
    a = load(path)
    assert a.title == "辛市博士后资助政策"
    assert "给予每人每年15万元生活资助" in a.text
    assert "一次性给予30万元安家补贴" in a.text
    assert "版权所有" not in a.text
    assert a.metadata["url"] == "https://rc.example.gov.cn/news/2024/0301.html"


@pytest.mark.parametrize(
    ("question", "file", "sentence"),
    [
        (
            "戊市见习单位吸纳未就业高校毕业生参加就业见习，每人每月补贴多少元？",
            "gov.txt",
            "按每人每月1800元的标准给予见习补贴",
        ),
        ("己县对新引进的本科毕业生租房补贴每月多少？", "sohu.txt", "给予每月800元租房补贴"),
        ("庚区A类人才子女可以在哪里就读？", "wechat.txt", "可在全区范围内选择一所公办学校就读"),
        ("辛市博士后出站留下工作给多少安家补贴？", "page.mhtml", "一次性给予30万元安家补贴"),
    ],
)
def test_web_pages_are_answered_and_cited(
    tmp_path, monkeypatch, fake_embedder, ephemeral_client, question, file, sentence
):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, (page, _, _) in PAGES.items():
        (docs / name).write_text(page, encoding="utf-8")
    mhtml(docs / "page.mhtml", HTML, "https://rc.example.gov.cn/news/2024/0301.html")
    bot, report = bot_over(docs, tmp_path / "store", monkeypatch, ephemeral_client)
    assert report.added == 4, report.failed
    answer = bot.ask(question)
    assert not answer.no_answer, answer.text
    assert sentence in answer.text
    n = int(re.search(r"\[(\d+)\]", answer.text).group(1))
    assert answer.citations[n - 1].file == file
    assert sentence in answer.citations[n - 1].text

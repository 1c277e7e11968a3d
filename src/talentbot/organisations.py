"""Organisations in answers to who / which company / which department questions: the noun phrase of a
quoted sentence that ends in 公司/局/委员会…, not one the question names itself, not a generic one (主管部门).
Whatever it returns is a substring of the sentence, so the answer stays a quotation."""

from __future__ import annotations

import re

# organisations: the word that ends a name, by what a question asks for
_ORG_COMPANY = ("有限责任公司", "股份有限公司", "有限公司", "公司", "集团", "企业", "厂")
_ORG_BODY = (
    "委员会",
    "办公室",
    "部门",
    "政府",
    "机关",
    "机构",
    "中心",
    "小组",
    "局",
    "厅",
    "委",
    "研究院",
    "研究所",
    "设计院",
    "法院",
    "检察院",
    "事务所",
    "协会",
    "学会",
    "银行",
    "大学",
    "学院",
)
_GENERIC = {
    "主管",
    "有关",
    "相关",
    "其他",
    "行政",
    "职能",
    "业务",
    "上级",
    "所在",
    "各级",
    "本级",
    "同级",
    "该",
    "本",
    "各",
    "原",
    "有限",
    "用人",
    "中介",
    "服务",
    "人才",
    "管理",
    "其",
    "等",
    "和",
    "或者",
    "及",
    "科技型",
    "高新技术",
    "重点",
    "龙头",
}

_PREPOSITIONS = set("由为对向给经从在被将把与和及")
_STOP = {
    "为",
    "由",
    "对",
    "向",
    "给",
    "是",
    "的",
    "在",
    "与",
    "和",
    "及",
    "或",
    "经",
    "将",
    "把",
    "被",
    "从",
    "同",
    "会同",
    "以",
    "于",
    "其中",
    "其",
    "该",
    "等",
    "并",
    "也",
    "还",
    "支持",
    "鼓励",
    "引导",
    "帮助",
    "指导",
    "组织",
    "推动",
    "负责",
    "成立",
    "设立",
    "成为",
    "作为",
    "通过",
    "依托",
    "联合",
    "携手",
    "包括",
    "如",
    "例如",
}


def _joins_name(ws: list[str], k: int, ends: tuple[str, ...]) -> bool:
    """``ws[k]`` is a 和 inside one name (人力资源和社会保障局, 工业和信息化部门), not between two
    (财政局和科技局): the word before it is not itself a name's ending."""
    return (
        ws[k] == "和"
        and k > 0
        and bool(re.fullmatch(r"[\u4e00-\u9fff]{2,}", ws[k - 1]))
        and not ws[k - 1].endswith(ends)
    )


def organisation(question: str, sentence: str) -> str | None:
    """The organisation ``sentence`` names in answer to a who/which-company/which-department ``question``:
    the noun phrase that ends in 公司/局/委员会…, not one the question names itself, not a generic one
    (主管部门)."""
    from .lexical import words

    company = re.search(r"企业|公司|集团|company|firm", question, re.I)
    ends = _ORG_COMPANY if company else _ORG_BODY + _ORG_COMPANY
    found: list[str] = []
    for clause in re.split(r"[，,；;。！？!?：:、\s]", sentence):
        ws = words(clause)
        for i, w in enumerate(ws):
            if not w.endswith(ends):
                continue
            j, head = i, ""
            while (
                j > 0
                and re.fullmatch(r"[\u4e00-\u9fffA-Za-z（）()]+", ws[j - 1])
                and (ws[j - 1] not in _STOP or _joins_name(ws, j - 1, ends))
                and len(ws[j - 1]) + sum(map(len, ws[j : i + 1])) <= 30
            ):
                if (
                    len(ws[j - 1]) > 1 and ws[j - 1][0] in _PREPOSITIONS
                ):  # jieba joins 由 to the name: 由市 | 人事局
                    head = ws[j - 1][1:]
                    break
                j -= 1
            name = head + "".join(ws[j : i + 1])
            suffix = next(e for e in ends if w.endswith(e))
            own = [*ws[j:i], w[: -len(suffix)]]  # the words before the ending: not all generic (主管部门)
            if (
                any(x and x not in _GENERIC for x in own)
                and len(name) >= 3
                and name not in question
                and name in sentence
            ):
                found.append(name)
    # 领导小组 | 办公室: the longer name that goes on from a shorter one
    found = [n for n in found if not any(o != n and o.startswith(n) for o in found)]
    return found[0] if found else None

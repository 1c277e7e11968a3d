"""China's administrative divisions (province ⊃ city ⊃ county/district) for recognising places in text.

The data is the division table that jionlp ships and maintains (``jionlp/dictionary/china_location.zip``:
full name, division code and short name per level). It is read straight from the installed package's
folder: importing ``jionlp`` itself prints a banner to stdout and takes 0.4 s, and only its data is used.

Matching rules, chosen so common words are not taken for places:

- provinces and prefecture-level cities match by full name (山西省, 忻州市) or short name (山西, 忻州);
- counties and districts match by full name (定襄县), or by short name when a zone word follows it
  (定襄经济开发区, 浦东新区), since many short names are ordinary words (和平, 新华, 长安);
- matching is Aho-Corasick (pyahocorasick) over every form, so long articles cost little;
- a short name counts where jieba's words start and end around it (中山 in 中山市, not in 中山大学),
  or where a zone word follows it (北京经济技术开发区, which jieba keeps as one word);
- short names of one character, generic ones shared by many divisions (高新区), and districts named by a
  common word (城区, 郊区, 矿区) never match.
"""

from __future__ import annotations

import importlib.util
import re
import threading
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import ahocorasick

from .errors import ConfigError

ZONE_WORDS = (
    "经济技术开发区",
    "高新技术产业开发区",
    "经济开发区",
    "高新技术开发区",
    "技术开发区",
    "开发区",
    "高新区",
    "经开区",
    "示范区",
    "试验区",
    "新区",
    "自贸区",
    "产业园",
    "工业园",
    "园区",
)
_GENERIC_SHARED = 4  # a short name used by more divisions than this is a generic word (城区, 郊区, 高新区)
_GENERIC_DISTRICT = re.compile(r"^[\u4e00-\u9fff]区$")  # 城区, 郊区, 矿区: districts named by a common word
_SUFFIX = re.compile(r"(省|市|自治区|特别行政区|自治州|地区|盟|县|区|旗|自治县|自治旗|林区|特区)$")


@dataclass(frozen=True)
class Place:
    """One division: ``level`` 0 province, 1 prefecture-level city, 2 county or district."""

    name: str
    short: str
    code: str
    level: int
    parent: str | None  # code of the division it belongs to


class Gazetteer:
    """Surface forms of every division, and the hierarchy between them."""

    def __init__(self, places: Iterable[Place]) -> None:
        self.by_code: dict[str, Place] = {}
        forms: dict[str, set[str]] = {}
        for p in places:
            self.by_code.setdefault(p.code, p)
            forms.setdefault(p.name, set()).add(p.code)
            if len(p.short) >= 2 and p.short != p.name:
                forms.setdefault(p.short, set()).add(p.code)
        self.full: dict[str, frozenset[str]] = {}
        self.short: dict[str, frozenset[str]] = {}
        for form, codes in forms.items():
            full = {c for c in codes if self.by_code[c].name == form}
            if full and not _GENERIC_DISTRICT.match(form):
                self.full[form] = frozenset(full)
            short = codes - full
            if short and len(short) <= _GENERIC_SHARED and not _SUFFIX.search(form):
                self.short[form] = frozenset(short)
        self._pinyin: dict[str, frozenset[str]] | None = None
        self._automaton = ahocorasick.Automaton()
        for form in {*self.full, *self.short}:
            self._automaton.add_word(form, form)
        self._automaton.make_automaton()

    def pinyin_names(self) -> dict[str, frozenset[str]]:
        """Toneless pinyin of province and city short names -> codes ('shanghai' -> 上海市)."""
        if self._pinyin is None:
            from pypinyin import lazy_pinyin

            table: dict[str, set[str]] = {}
            for p in self.by_code.values():
                if p.level < 2 and len(p.short) >= 2:
                    table.setdefault("".join(lazy_pinyin(p.short)), set()).add(p.code)
            self._pinyin = {k: frozenset(v) for k, v in table.items()}
        return self._pinyin

    def ancestors(self, code: str) -> list[str]:
        """``code`` and the codes above it, nearest first."""
        out: list[str] = []
        cur: str | None = code
        while cur and cur not in out:
            out.append(cur)
            p = self.by_code.get(cur)
            cur = p.parent if p else None
        return out

    def name(self, code: str) -> str:
        p = self.by_code.get(code)
        return p.name if p else code

    def find(self, text: str) -> list[tuple[int, str, frozenset[str]]]:
        """Places named in ``text``: (offset, surface form, candidate codes), left to right, the longest
        form at each offset. A form names several divisions when it is ambiguous (朝阳)."""
        starts: dict[int, list[str]] = {}
        for end, form in self._automaton.iter(text):
            starts.setdefault(end - len(form) + 1, []).append(form)
        out: list[tuple[int, str, frozenset[str]]] = []
        pos, cuts = 0, None
        for i in sorted(starts):
            if i < pos:
                continue
            for form in sorted(starts[i], key=len, reverse=True):
                j = i + len(form)
                if form in self.full:
                    codes = self.full[form]
                else:
                    zone = text.startswith(ZONE_WORDS, j) or text.startswith("经济", j)
                    if zone:
                        codes = self._codes(form, zone)
                    else:
                        cuts = _cuts(text) if cuts is None else cuts
                        codes = self._codes(form, zone) if i in cuts and j in cuts else frozenset()
                if codes:
                    out.append((i, form, codes))
                    pos = j
                    break
        return out

    def _codes(self, form: str, zone_follows: bool) -> frozenset[str]:
        return frozenset(c for c in self.short[form] if self.by_code[c].level < 2 or zone_follows)

    def codes_in(self, text: str) -> set[str]:
        """Every division named in ``text``, with the divisions above each (山西 for a text naming 定襄县)."""
        return {a for _, _, codes in self.find(text) for c in codes for a in self.ancestors(c)}


def _cuts(text: str) -> set[int]:
    """Offsets where jieba's words start or end."""
    from .lexical import _tokenizer

    cuts, pos = {0}, 0
    for w in _tokenizer().cut(text):
        pos += len(w)
        cuts.add(pos)
    return cuts


def _data_file() -> Path:
    spec = importlib.util.find_spec("jionlp")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the place table needs the jionlp package: pip install jionlp")
    return Path(next(iter(spec.submodule_search_locations))) / "dictionary" / "china_location.zip"


# A division's line, from the newline before it: the search jumps from newline to newline (the table's 700,000
# lines are mostly towns and villages, skipped), and reads bytes (no decoding of 12 MB): 0.14 -> 0.09 s a read.
_ROW = re.compile(rb"\n(\t{0,2})([^\t\r\n]+)\t(\d+)\t([^\t\r\n]*)\r?$", re.M)


def read_places(path: Path) -> list[Place]:
    """Parse jionlp's table: one division a line, indented by level, ``name<TAB>code<TAB>short``
    (deeper levels, towns and villages, are skipped)."""
    with zipfile.ZipFile(path) as z:
        data = b"\n" + z.read(z.namelist()[0])
    places: list[Place] = []
    parents: list[str | None] = [None, None, None]
    for m in _ROW.finditer(data):
        depth, name, code, short = len(m.group(1)), *(g.decode("utf-8") for g in m.group(2, 3, 4))
        parent = parents[depth - 1] if depth else None
        if depth == 1 and parent and code == parent:  # municipalities list themselves as their own city
            parents[1] = code
            continue
        places.append(Place(name, short, code, depth, parent))
        parents[depth] = code
    return places


_lock = threading.Lock()
_gazetteer: Gazetteer | None = None


def gazetteer() -> Gazetteer:
    """The process-wide gazetteer, read on first use (about 0.2 s)."""
    global _gazetteer
    if _gazetteer is None:
        with _lock:
            if _gazetteer is None:
                try:
                    _gazetteer = Gazetteer(read_places(_data_file()))
                except (OSError, zipfile.BadZipFile, KeyError, UnicodeDecodeError) as e:
                    raise ConfigError(f"cannot read jionlp's place table ({e}): reinstall jionlp") from e
    return _gazetteer

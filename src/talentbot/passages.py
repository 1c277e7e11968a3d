"""What retrieval hands on: the article filters, the question's weighted term groups, and passages."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import InputError
from .regions import region_matches
from .store import ArticleRecord


@dataclass(frozen=True)
class Filters:
    """Restrict retrieval to some articles. Empty fields match everything.

    ``region`` matches an article about that place or a place inside it (广东: the Guangzhou and Shenzhen
    regulations too; 广州: never a Shenzhen one), by the article's region codes (:mod:`talentbot.regions`).
    The dates compare with the date the article takes effect when it states one, else with its own date.
    """

    file: str | None = None
    source: str | None = None
    region: str | None = None
    date_from: str | None = None
    date_to: str | None = None

    def __post_init__(self) -> None:
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value and not (len(value) >= 4 and value[:4].isdigit()):
                raise InputError(f"{name} '{value}' is not a date: use YYYY, YYYY-MM or YYYY-MM-DD")

    def matches(self, rec: ArticleRecord) -> bool:
        if self.file and self.file not in (rec.file, rec.path):
            return False
        if self.source and self.source not in rec.source:
            return False
        if self.region and not region_matches(self.region, rec.region, rec.region_codes):
            return False
        date = rec.effective or rec.date
        if self.date_from and (not date or date < self.date_from):
            return False
        return not (self.date_to and (not date or date[: len(self.date_to)] > self.date_to))

    @property
    def active(self) -> bool:
        return any((self.file, self.source, self.region, self.date_from, self.date_to))


@dataclass(frozen=True)
class TermGroup:
    """One thing the question asks for: any of ``alternatives`` in a passage counts as ``weight``."""

    weight: float
    alternatives: frozenset[str]

    def found_in(self, tokens: set[str]) -> bool:
        return not self.alternatives.isdisjoint(tokens)


def coverage(groups: list[TermGroup], tokens: set[str]) -> float:
    """Weighted share of the question's term groups that occur in ``tokens``."""
    total = sum(g.weight for g in groups)
    return sum(g.weight for g in groups if g.found_in(tokens)) / total if total else 0.0


@dataclass
class Passage:
    """A retrieved chunk with its scores. ``coverage`` is the weighted share of question terms it holds."""

    id: str
    text: str
    meta: dict
    score: float
    coverage: float = 0.0
    terms: list[str] = field(default_factory=list)
    groups: list[TermGroup] = field(default_factory=list)
    agreed: bool = False  # first in both the lexical and the dense ranking (words and meaning agree)

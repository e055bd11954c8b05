"""Checkable comparisons: a number in the question against a limit written in a passage.

"my basket is 42 dollars, do I get free delivery?" deserves "no, you are $8.00
short of the $50", not a quoted shipping table. Each rule of
``answers.comparisons`` (knowledge.yml) says

``when``     a regular expression the question must match (its topic words)
``asks``     which number the question must give: ``money`` (``$42``, ``42 dollars``)
             or ``days_ago`` (``delivered 20 days ago``, ``3 weeks since delivery``)
``search``   the query that finds the passage holding the limit
``limit``    a regular expression over that passage with a named group ``limit``
             (and optionally others, e.g. ``cost``, usable in the templates)
``meets``    how the customer's number satisfies the limit: ``above`` (more than it),
             ``at_least``, ``below``, ``at_most``
``met`` / ``not_met``  the reply templates; placeholders ``{value}``, ``{limit}``,
             ``{difference}`` and the pattern's other groups

The numbers come from the question and from the passage, the arithmetic from
here, the words from the configuration; the reply cites the passage and quotes
the sentence that states the limit, so the customer can check it. The first rule
whose ``when`` matches and whose number is present is used; when its passage is
not found the question is answered the ordinary way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

from knowledge.config import AnswerSettings, ComparisonRule
from knowledge.extractive import sentences

_NUM = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?"
_DAYS = re.compile(r"\b(\d+)\s*(day|week)s?\b", re.IGNORECASE)
_UNIT_DAYS = {"day": 1, "week": 7}


@dataclass
class Comparison:
    """A filled-in comparison and the passage that states the limit."""

    text: str
    passage_number: int  # 1-based, among the passages searched
    quote: str
    rule: str


def _number(whole: str, cents: Optional[str]) -> float:
    return float(whole.replace(",", "") + ("." + cents if cents else ""))


def money_in(question: str, currency_words: Sequence[str]) -> Optional[float]:
    """The amount of money a question names: ``$42``, ``42.50 dollars``, ``48 bucks``."""
    symbol = re.search(rf"[$£€]\s?{_NUM}", question)
    if symbol:
        return _number(symbol.group(1), symbol.group(2))
    if currency_words:
        words = "|".join(re.escape(w) for w in currency_words)
        named = re.search(rf"\b{_NUM}\s*(?:{words})\b", question, re.IGNORECASE)
        if named:
            return _number(named.group(1), named.group(2))
    return None


def days_in(question: str) -> Optional[float]:
    """A span of days a question names ("20 days ago", "3 weeks since delivery")."""
    match = _DAYS.search(question)
    if not match:
        return None
    return float(int(match.group(1)) * _UNIT_DAYS[match.group(2).lower()])


def _meets(value: float, limit: float, how: str) -> bool:
    return {"above": value > limit, "at_least": value >= limit,
            "below": value < limit, "at_most": value <= limit}[how]


def applicable(question: str, settings: AnswerSettings) -> Optional[tuple]:
    """(rule, the question's number) of the first rule that applies, else None."""
    for rule in settings.comparisons:
        if not re.search(rule.when, question, re.IGNORECASE):
            continue
        value = (money_in(question, settings.currency_words) if rule.asks == "money"
                 else days_in(question))
        if value is not None:
            return rule, value
    return None


def compare(rule: ComparisonRule, value: float, bodies: Sequence[str],
            settings: AnswerSettings) -> Optional[Comparison]:
    """Fill ``rule`` from the first passage body whose text states the limit."""
    pattern = re.compile(rule.limit, re.IGNORECASE)
    for number, body in enumerate(bodies, start=1):
        for part in sentences(body):
            match = pattern.search(part)
            if match:
                return Comparison(text=_fill(rule, value, match, settings),
                                  passage_number=number, quote=part, rule=rule.name)
    return None


def _fill(rule: ComparisonRule, value: float, match: re.Match,
          settings: AnswerSettings) -> str:
    groups: Dict[str, str] = {k: v for k, v in match.groupdict().items() if v is not None}
    limit = float(groups.pop("limit").replace(",", ""))

    def show(amount: float) -> str:
        return settings.money_format.format(amount) if rule.asks == "money" else f"{amount:g}"

    values = {k: show(float(v.replace(",", ""))) if re.fullmatch(r"\d[\d,]*(?:\.\d+)?", v) else v
              for k, v in groups.items()}
    values.update(value=show(value), limit=show(limit), difference=show(abs(value - limit)))
    return (rule.met if _meets(value, limit, rule.meets) else rule.not_met).format(**values)

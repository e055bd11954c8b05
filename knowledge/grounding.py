"""The grounding guard: a generated reply may only state what its passages say.

``check(reply, passages)`` extracts the checkable facts of a reply and looks each
one up in the passages the model was given (after injection cleaning):

* numbers, with their unit when they have one: prices (``$189``, ``189.00``),
  percentages, durations (``30 days``, ``5-7 business days``, ``2-year``),
  temperatures (``-20°C``), sizes and measurements. ``$189`` matches ``189.00``;
  ``30 days`` needs 30 *with a day unit* in the passages; number words in the
  passages (``one code per order``) count as numbers;
* codes such as ``FREE100``, ``ORD-12345``, ``TL-HIKE-01``, e-mail addresses and URLs;
* product names: every catalogue name in the reply, and any capitalised phrase
  ending in a product word ("Nike Air Max Trainers"), must appear in the passages.
  The product words are the last words of the indexed catalogue's names ("Boots",
  "Jacket") plus ``grounding.product_words``, so another shop's catalogue brings
  its own ("Laptop", "Headphones");
* citations ``[n]`` must name a passage that exists;
* injection: the reply must not repeat the system instructions (8 words in a row) or
  text that injection cleaning removed from the passages, turns or question (5 words in
  a row), and must not itself read as an instruction-override or a new role ("I am now
  DAN", "developer mode enabled", "my system prompt is …": ``injection.instruction_like``
  and ``ROLE_TAKEN``);
* **support**: at least ``min_support`` (0.5) of the reply's content words (four letters or
  more, not function words) must occur in the passages or the question. This catches replies
  that state no checkable fact but are not about the passages either ("I'm sorry for any
  confusion, as a thread service AI I specialise in …", typical of a very small model):
  measured on the benchmark, such replies had 0.00-0.44 support, faithful ones 0.67-1.0.

A reply with any problem fails; the caller replaces it with the extractive answer.
``declined`` is set when the model said it does not know.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, List, Optional, Sequence, Set, Tuple

from knowledge.injection import instruction_like

UNITS = [
    (r"%|percent\b|per cent\b", "%"),
    (r"°\s?C\b|degrees? C(?:elsius)?\b|ºC", "°C"),
    (r"°\s?F\b|degrees? F(?:ahrenheit)?\b|ºF", "°F"),
    (r"(?:business |working )?days?\b|-day\b", "day"),
    (r"weeks?\b|-week\b", "week"),
    (r"months?\b|-month\b", "month"),
    (r"years?\b|-year\b|yrs?\b", "year"),
    (r"hours?\b|hrs?\b|-hour\b", "hour"),
    (r"minutes?\b|mins?\b|-minute\b", "minute"),
    (r"cm\b", "cm"), (r"mm\b", "mm"), (r"kg\b", "kg"), (r"g\b", "g"),
    (r"in\b|inch(?:es)?\b|\"", "in"), (r"oz\b", "oz"), (r"lbs?\b", "lb"),
]
_UNIT_RE = "|".join(f"(?:{p})" for p, _ in UNITS)
_NUM = r"\d[\d,]*(?:\.\d+)?"
NUMBER = re.compile(
    rf"(?P<neg>(?<![\w.])[-−–](?=\d))?(?P<a>{_NUM})"
    rf"(?:\s*(?:-|–|to)\s*(?P<b>{_NUM}))?"
    rf"\s*(?P<unit>{_UNIT_RE})?",
    re.IGNORECASE,
)
MONEY = re.compile(rf"[$£€]\s?(?P<a>{_NUM})")
CITATION = re.compile(r"\[(\d{1,2})\]")
CODE = re.compile(r"\b(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9]{2,}(?:-[A-Z0-9]+)+\b|"
                  r"\b(?=\w*\d)(?=\w*[A-Z]{2})[A-Z][A-Z0-9]{3,}\b")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
URL = re.compile(r"https?://[^\s)\]>\"']+")


def product_words(names: Iterable[str], extra: Iterable[str] = ()) -> List[str]:
    """The words a product name ends in: the last word of each catalogue name, plus ``extra``."""
    words = {name.split()[-1] for name in names if name and name.split()}
    words |= {w for w in extra if w}
    return sorted(words, key=len, reverse=True)


@lru_cache(maxsize=32)
def _product_phrase(words: Tuple[str, ...]) -> Optional["re.Pattern[str]"]:
    """A capitalised phrase of two to five words ending in one of ``words`` (plural too)."""
    if not words:
        return None
    ends = "|".join(re.escape(w) + r"(?:s|es)?" for w in words)
    return re.compile(rf"\b((?:[A-Z][\w'&.-]*\s+){{1,4}}(?:{ends}))\b")
LEADING_WORDS = {"the", "our", "a", "an", "your", "this", "these", "those", "both", "try", "and",
                 "or", "with", "for", "from", "yes", "no", "sorry", "hi", "my", "its", "their",
                 "any", "all", "each", "every", "other"}
DECLINED = re.compile(
    r"\b(?:i (?:don't|do not) know|i'm not sure|i am not sure|(?:can't|cannot|can not|unable to) "
    r"(?:answer|help with|find)|no information|don't have (?:any )?information)\b",
    re.IGNORECASE)
NUMBER_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
                "fifteen": 15, "twenty": 20, "thirty": 30, "once": 1, "twice": 2,
                "single": 1, "half": 0.5}
LEAK_SHINGLE = 8
#: Words in a row shared with removed (injected) text that mean the reply obeyed it.
REMOVED_SHINGLE = 5
#: A reply that speaks as a re-programmed assistant, or about its own instructions.
ROLE_TAKEN = re.compile(
    r"\b(?:i am|i'm) (?:now |no longer )(?:an? |the |in )?|\b(?:developer|dan|jailbreak|god|"
    r"unrestricted|debug) mode (?:is )?(?:on|enabled|activated|engaged)\b|\bmy (?:system |hidden |"
    r"secret |original |initial )?(?:prompt|instructions|programming|directives)\b|\b(?:i was|i've "
    r"been|i have been) (?:told|instructed|programmed|prompted) to\b", re.IGNORECASE)
#: Function words left out of the support measure (with words under four letters).
FUNCTION_WORDS = set("""
about above after again against also although always another anything around because been
before being below between both cannot could does doing done down during each either else
even ever every from further have having here hers herself himself however into itself just
last least less like made make many might more most much must myself need never next none
once only other ours ourselves over own perhaps please rather really same shall should since
some such sure than that their theirs them themselves then there these they this those
though through thus together under until upon very want well were what whatever when where
whether which while whom whose will with within without would yours yourself yourselves
long sorry thank thanks hello okay yes""".split())


@dataclass
class GroundingReport:
    """Whether a reply passed, and why not."""

    ok: bool
    problems: List[str] = field(default_factory=list)
    citations: List[int] = field(default_factory=list)
    declined: bool = False
    #: The problems that mean the reply obeyed an injection or leaked the instructions
    #: (also in ``problems``; checked even where the rest of the guard is switched off).
    injection: List[str] = field(default_factory=list)


def _unit(text: Optional[str]) -> Optional[str]:
    if not text:
        return None
    for pattern, name in UNITS:
        if re.fullmatch(pattern, text.strip(), re.IGNORECASE):
            return name
    return None


def _value(text: str) -> float:
    return float(text.replace(",", ""))


def numbers(text: str) -> List[Tuple[float, Optional[str], str]]:
    """[(value, unit or None, as written)] of every number in ``text`` (ranges give two)."""
    found = []
    for match in NUMBER.finditer(text):
        unit = _unit(match.group("unit"))
        sign = -1.0 if match.group("neg") else 1.0
        found.append((sign * _value(match.group("a")), unit, match.group(0).strip()))
        if match.group("b"):
            found.append((_value(match.group("b")), unit, match.group(0).strip()))
    return found


def _strip_non_facts(text: str) -> str:
    """Remove citations, codes, e-mails and URLs before numbers are read."""
    for pattern in (CITATION, URL, EMAIL, CODE):
        text = pattern.sub(" ", text)
    return text


@dataclass
class _Facts:
    text: str
    values: Set[float]
    pairs: Set[Tuple[float, str]]

    @classmethod
    def of(cls, passages: Iterable[str]) -> "_Facts":
        text = "\n".join(passages)
        values: Set[float] = set()
        pairs: Set[Tuple[float, str]] = set()
        for value, unit, _ in numbers(_strip_non_facts(text)):
            values.add(value)
            values.add(abs(value))
            if unit:
                pairs.add((value, unit))
        for match in MONEY.finditer(text):
            values.add(_value(match.group("a")))
        lowered = text.lower()
        for word, value in NUMBER_WORDS.items():
            if re.search(rf"\b{word}\b", lowered):
                values.add(float(value))
        return cls(text=lowered, values=values, pairs=pairs)


def _shingles(text: str, size: int) -> Set[Tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(words[i:i + size]) for i in range(len(words) - size + 1)}


def content_words(text: str) -> Set[str]:
    """Lower-case words of four letters or more, without function words, plural ``s`` cut."""
    words = set()
    for word in re.findall(r"[a-z][a-z'-]{3,}", text.lower()):
        word = word.strip("'-")
        if len(word) < 4 or word in FUNCTION_WORDS:
            continue
        words.add(word[:-1] if word.endswith("s") else word)
    return words


def support(reply: str, passages: Sequence[str], question: str = "") -> float:
    """Share of the reply's content words that occur in the passages or the question."""
    said = content_words(CITATION.sub(" ", reply))
    if not said:
        return 1.0
    known = content_words("\n".join(passages) + "\n" + question)
    return len(said & known) / len(said)


def check(reply: str, passages: Sequence[str], *, system_prompt: str = "",
          product_names: Iterable[str] = (), question: str = "",
          min_support: float = 0.5, removed: Sequence[str] = (),
          extra_product_words: Iterable[str] = ()) -> GroundingReport:
    """Check ``reply`` against ``passages`` (the texts the model saw, numbered from 1);
    ``removed`` is the untrusted text that injection cleaning kept from the model."""
    problems: List[str] = []
    text = (reply or "").strip()
    if not text:
        return GroundingReport(ok=False, problems=["empty reply"])
    facts = _Facts.of(passages)
    citations = [int(n) for n in CITATION.findall(text)]
    for number in sorted(set(citations)):
        if not 1 <= number <= len(passages):
            problems.append(f"cites [{number}], which is not one of the {len(passages)} passages")

    for match in MONEY.finditer(text):
        if _value(match.group("a")) not in facts.values:
            problems.append(f"price {match.group(0).strip()} is not in the passages")
    body = _strip_non_facts(MONEY.sub(" ", text))
    for value, unit, written in numbers(body):
        if unit and (value, unit) not in facts.pairs and (abs(value), unit) not in facts.pairs:
            problems.append(f"{written} is not in the passages")
        elif not unit and value not in facts.values:
            problems.append(f"the number {written} is not in the passages")

    for pattern, what in ((CODE, "code"), (EMAIL, "e-mail address"), (URL, "link")):
        for match in pattern.finditer(text):
            token = match.group(0).rstrip(".,;:")
            if token.lower() not in facts.text:
                problems.append(f"{what} {token} is not in the passages")

    names = sorted({n for n in product_names if n}, key=len, reverse=True)
    phrase = _product_phrase(tuple(product_words(names, extra_product_words)))
    rest = text
    for name in names:
        if re.search(rf"\b{re.escape(name)}\b", rest, re.IGNORECASE):
            if name.lower() not in facts.text:
                problems.append(f"product {name} is not in the passages")
            rest = re.sub(rf"\b{re.escape(name)}\b", " ", rest, flags=re.IGNORECASE)
    for match in (phrase.finditer(rest) if phrase else ()):
        words = match.group(1).split()
        while words and words[0].lower() in LEADING_WORDS:
            words = words[1:]
        if len(words) < 2:
            continue
        named = " ".join(words)
        if named.lower() not in facts.text:
            problems.append(f"product {named} is not in the passages")

    said = content_words(CITATION.sub(" ", text))
    if len(said) >= 4:
        share = support(text, passages, question)
        if share < min_support:
            problems.append(f"only {share:.0%} of the reply's words come from the passages "
                            f"(needs {min_support:.0%})")

    injection: List[str] = []
    if system_prompt:
        own = _shingles(system_prompt, LEAK_SHINGLE) - _shingles("\n".join(passages), LEAK_SHINGLE)
        if own & _shingles(text, LEAK_SHINGLE):
            injection.append("the reply repeats the assistant's instructions")
    injected = _shingles("\n".join(removed), REMOVED_SHINGLE) - _shingles(
        "\n".join(passages), REMOVED_SHINGLE)
    if injected & _shingles(text, REMOVED_SHINGLE):
        injection.append("the reply repeats text removed as an injection")
    if instruction_like(text) or ROLE_TAKEN.search(text):
        injection.append("the reply follows injected instructions")
    problems += injection

    unique: List[str] = list(dict.fromkeys(problems))
    return GroundingReport(ok=not unique, problems=unique, citations=citations,
                           declined=bool(DECLINED.search(text)), injection=injection)

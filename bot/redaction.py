"""Masks personal data in conversation text before it leaves the tracker store.

Exports, reports and the per-turn log are read by people who do not need a customer's email,
phone, card or address, so every text that goes there passes through `redact`. The tracker
store itself keeps the original text: the conversation (forms, the hand-off to a human)
needs it.

The patterns favour masking: a false positive hides a few harmless characters, a false
negative leaks data. They still leave order ids (ORD-10042), prices, dates, times, sizes and
quantities alone; docs/analytics.md lists what they miss.
"""

from __future__ import annotations

import re
from typing import Callable, List, Match, Optional, Pattern, Tuple, Union

EMAIL, PHONE, CARD, ADDRESS = "[EMAIL]", "[PHONE]", "[CARD]", "[ADDRESS]"

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}(?![\w-])"
)

# 13-19 digits, single spaces or dashes between them; not glued to a longer number or id.
_CARD = re.compile(r"(?<![\w+-])\d(?:[ -]?\d){12,18}(?![ -]?\d)(?!\w)")

# Digit groups joined by separators, optionally "+" / "00" and a "(555)" area code; which
# candidates are phones is decided by `_is_phone` (digit count, layout).
_SEP = r"(?:[ \t]?[-.][ \t]?|[ \t])"
_PHONE = re.compile(
    rf"(?<![\w+/.$€£#-])(?:\+[ \t]?|\b00)?"
    rf"(?:\d{{1,4}}{_SEP})?(?:\(\d{{1,4}}\){_SEP}?)?"
    rf"\d{{1,12}}(?:{_SEP}\d{{1,12}}){{0,6}}"
    rf"(?![\w/]|[.:-]\d)"
)
_DIGIT_GROUP = re.compile(r"\d+")

_STREET_SUFFIX = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
    r"Terrace|Ter|Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq|Trail|Trl|Alley|Loop"
)
# Words that never belong to a street name; they keep "2 shirts on the way" unmasked.
_NOT_A_NAME = (
    r"the|a|an|on|of|in|to|for|and|or|my|your|our|their|his|her|at|by|with|from|is|was|"
    r"are|be|it|its|this|that|these|those|me|i|we|you|they|all|more|than|per|x"
)
_CITY_WORD = r"[A-Z][A-Za-z'-]+(?:\.(?=[ \t]+[A-Z]))?"  # "St. Louis", not "Leeds."
_CITY = rf"{_CITY_WORD}(?:[ \t]+{_CITY_WORD}){{0,2}}"
_STATE = r"[A-Z]{2}\b"
_ZIP = r"\d{5}(?:-\d{4})?(?![\w-])"
_ADDRESS = re.compile(
    rf"(?<![\w$€£.,/:-])\d{{1,6}}[A-Za-z]?[ \t]+"
    rf"(?:(?i:(?!(?:{_NOT_A_NAME})\b))[A-Za-z0-9][\w'.-]*[ \t]+){{1,4}}"
    rf"(?i:{_STREET_SUFFIX})\b\.?"
    rf"(?:[ \t]+(?:N|S|E|W|NE|NW|SE|SW)\b\.?)?"
    rf"(?:,?[ \t]*(?i:apartment|apt|suite|ste|floor|fl|room|rm|unit)\b\.?[ \t]*#?[ \t]*[\w-]+"
    rf"|,?[ \t]*\#[ \t]*[\w-]+)?"
    rf"(?:,[ \t]*{_CITY}(?:,[ \t]*|[ \t]+){_STATE}(?:[ \t]+{_ZIP})?"
    rf"|[ \t]+{_CITY}[ \t]+{_STATE}[ \t]+{_ZIP}"
    rf"|,[ \t]*{_CITY}[ \t]+{_ZIP}"
    rf"|,?[ \t]+{_STATE}[ \t]+{_ZIP}"
    rf"|,?[ \t]+{_ZIP}"
    rf"|,[ \t]*{_CITY}(?=[ \t]*(?:[.!?;]|$)))?"
)


def luhn_valid(digits: str) -> bool:
    """The card-number checksum: random 16-digit numbers pass only one time in ten."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _mask_card(match: Match[str]) -> str:
    """Masks the longest Luhn-valid 13-19 digit run of whole groups from the start; all
    groups but the last need >= 4 digits (4-4-4-4, Amex 4-6-5, 4-4-4-4-3), so a phone
    number followed by a year is not taken for a card."""
    candidate = match.group()
    groups = list(_DIGIT_GROUP.finditer(candidate))
    for end in range(len(groups), 0, -1):
        digits = "".join(g.group() for g in groups[:end])
        card_layout = all(len(g.group()) >= 4 for g in groups[: end - 1])
        if card_layout and 13 <= len(digits) <= 19 and luhn_valid(digits):
            return CARD + candidate[groups[end - 1].end():]
    return candidate


_NANP_LAYOUTS = ([10], [3, 3, 4], [3, 7], [11], [1, 3, 3, 4], [1, 10])


def _is_phone(candidate: str) -> bool:
    """E.164 (+ or 00, 8-15 digits); a national number with a trunk 0 (10-11 digits in
    groups of >= 2); or a North American number in a layout people type (555-123-4567,
    (555) 123 4567, 1-555-123-4567, 5551234567). Anything else, such as a list of sizes
    ("32 34 36 38 40"), is not a phone."""
    groups = _DIGIT_GROUP.findall(candidate)
    digits = "".join(groups)
    if candidate.startswith("00"):
        return 8 <= len(digits) - 2 <= 15
    if candidate.startswith("+"):
        return 8 <= len(digits) <= 15
    if digits.startswith("0"):
        return 10 <= len(digits) <= 11 and all(len(g) >= 2 for g in groups)
    national = digits[1:] if len(digits) == 11 and digits[0] == "1" else digits
    return [len(g) for g in groups] in _NANP_LAYOUTS and len(national) == 10 and national[0] != "1"


def _mask_phone(match: Match[str]) -> str:
    """Masks the leftmost-longest run of whole groups that is a phone: up to two leading
    groups of <= 2 digits may be dropped ("size 10 5551234567"), trailing ones too
    ("555 123 4567 2024" -> "[PHONE] 2024"), and what follows is checked again."""
    candidate = match.group()
    groups = list(_DIGIT_GROUP.finditer(candidate))
    for first in range(min(3, len(groups))):
        if any(len(g.group()) > 2 for g in groups[:first]):
            break
        begin = 0 if first == 0 else groups[first].start()
        if first and candidate[begin - 1] == "(":
            begin -= 1
        for last in reversed(range(first, len(groups))):
            end = groups[last].end()
            span = candidate[begin:end]
            if span.count("(") == span.count(")") and _is_phone(span):
                rest = candidate[end:]
                rest = _PHONE.sub(_mask_phone, rest) if rest.strip(" \t.-") else rest
                return candidate[:begin] + PHONE + rest
    return candidate


_STEPS: List[Tuple[Pattern[str], Union[str, Callable[[Match[str]], str]]]] = [
    (_EMAIL, EMAIL),
    (_CARD, _mask_card),
    (_PHONE, _mask_phone),
    (_ADDRESS, ADDRESS),
]


def redact(text: Optional[str]) -> str:
    """Returns `text` with emails, payment cards, phone numbers and street addresses
    replaced by [EMAIL], [CARD], [PHONE], [ADDRESS]; None becomes ""."""
    if not text:
        return ""
    for pattern, replacement in _STEPS:
        text = pattern.sub(replacement, text)
    return text

"""Prompt-injection defences: text written by others is data, never instructions.

Three places use this module:

* ``user_attack(text)`` classifies the customer's own message. A request for the
  assistant's instructions ("what is your system prompt?") or an attempt to
  re-program it ("ignore your instructions and …", "you are now in developer
  mode") gets a fixed, in-role reply and never reaches the language model.
* ``neutralise(text)`` cleans any untrusted text before it is put into a prompt
  (retrieved passages, earlier turns, the question): it removes chat-template
  control tokens and our own prompt-section markers, so the text cannot open a
  new "system" turn, and it replaces each paragraph that tries to instruct the
  assistant (the injected review in ``guides/customer-reviews.md``) with a short
  notice. The index itself keeps the document verbatim; ingestion only flags it.
* ``instruction_like(text)`` is the detector both of them share; ingestion uses it
  to flag chunks (metadata ``flags``) so the summary can name them.

Pattern matching cannot catch every attack, so it is one layer of several: the
prompt marks every passage as data, and the grounding guard (``grounding``)
rejects replies with codes, prices, e-mail addresses or numbers that are not in the
(cleaned) passages and replies that repeat the system instructions.
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

#: Phrases that try to give the assistant instructions or change its role.
_INSTRUCTION_PATTERNS = [
    r"\b(ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}\b(instructions?|rules|prompts?|"
    r"guidelines|directions|programming|everything (?:above|before))\b",
    r"\byou are (?:no longer|now)\b",
    r"\bfrom now on\b",
    r"\b(?:developer|debug|god|jailbreak|dan) mode\b",
    r"\bjailbreak",
    r"\b(?:hidden|secret|system) (?:instructions?|prompt|directives?)\b",
    r"\bsystem prompt\b",
    r"\b(?:reveal|show|print|repeat|output|tell me|give me|share|display|leak|dump|recite)\b"
    r"[^.\n]{0,40}\b(?:your|the|these|those|my)\b[^.\n]{0,20}"
    r"\b(?:instructions|prompt|rules|guidelines|configuration|directives)\b",
    r"\b(?:pretend|roleplay|role-play)\b[^.\n]{0,30}\b(?:you are|you're|to be|as)\b",
    r"\bact as (?:an? |the |my )?(?:admin|administrator|developer|owner|system|unrestricted)",
    r"\bthis is authori[sz]ed by\b",
    r"<\|?(?:im_start|im_end|system|endoftext|eot_id|start_header_id)\|?>",
    r"\[/?INST\]",
    r"(?m:^\s*(?:system|assistant)\s*:)",
]
_INSTRUCTION_RE = re.compile("|".join(f"(?:{p})" for p in _INSTRUCTION_PATTERNS), re.IGNORECASE)

#: Asking what the assistant was told (its prompt) rather than re-programming it.
_PROMPT_LEAK_RE = re.compile(
    r"\b(?:system prompt|(?:hidden|secret) instructions|initial prompt|what (?:were|are) you told|"
    r"instructions you (?:were|have been) given|"
    r"(?:reveal|show|print|repeat|recite|tell me|share|display|dump|leak|what are|what is|what's)"
    r"\b[^.\n]{0,20}\byour (?:instructions|prompt|programming|configuration))\b",
    re.IGNORECASE,
)

#: Control tokens of common chat templates and our own template's section markers.
_CONTROL_TOKENS = re.compile(
    r"<\|[a-z_]{2,30}\|>|</?s>|\[/?INST\]|<<\/?SYS>>|<\/?(?:system|user|assistant)>|"
    r"(?m:^\s*\[(?:system|user|assistant)\]\s*$)",
    re.IGNORECASE,
)

REDACTED = "[Part of this text was removed because it tried to give instructions to the assistant.]"


def instruction_like(text: str) -> bool:
    """True when ``text`` contains a phrase that tries to instruct or re-program the assistant."""
    return bool(_INSTRUCTION_RE.search(text or ""))


def user_attack(text: str) -> Optional[str]:
    """``"prompt_leak"``, ``"injection"`` or None for an ordinary customer message."""
    if not text:
        return None
    if _INSTRUCTION_RE.search(text):
        return "prompt_leak" if _PROMPT_LEAK_RE.search(text) else "injection"
    if _PROMPT_LEAK_RE.search(text):
        return "prompt_leak"
    return None


def strip_control_tokens(text: str) -> str:
    """``text`` without chat-template control tokens or prompt-section markers."""
    return _CONTROL_TOKENS.sub(" ", text or "")


def neutralise(text: str) -> Tuple[str, int]:
    """(cleaned text, number of paragraphs removed) for text that goes into a prompt."""
    cleaned = strip_control_tokens(text)
    paragraphs = re.split(r"(\n\s*\n)", cleaned)
    removed = 0
    out: List[str] = []
    for part in paragraphs:
        if part.strip() and instruction_like(part):
            removed += 1
            out.append(REDACTED)
        else:
            out.append(part)
    return "".join(out), removed

"""Prompt-injection defences: text written by others is data, never instructions.

Where it is used:

* ``user_attack(text)`` / ``conversation_attack(question, history)`` screen the
  customer's message (and the last customer turn joined to it, for an attack
  spread over two turns). Only a clear attack is refused: an instruction-override
  aimed at the assistant itself ("ignore *your* instructions", "you are now DAN",
  "reveal your system prompt", "developer mode", chat-template control tokens).
  The customer's own earlier instructions ("ignore my previous instructions about
  the delivery", "from now on send my orders to my office"), the shop's rules,
  guidelines and instructions ("show me the rules for returns", "washing
  instructions"), "act as if I'm a new customer", "pretend it's a gift" and role
  words in product questions ("system boots") are ordinary questions.
* ``neutralise(text)`` cleans untrusted text before it enters a prompt (passages,
  earlier turns, the question): chat-template control tokens and the prompt's data
  markers are removed, so the text cannot close its data section or open a
  "system" turn, and each paragraph that tries to instruct the assistant (the
  injected review in ``guides/customer-reviews.md``) is replaced by a notice.
* ``instruction_like(text)`` is the detector behind both; ingestion uses it to flag
  chunks, and the grounding guard to reject a reply that took an injected role.

Detection runs on normalised variants of the text, so common disguises do not hide a
known attack: Unicode compatibility forms, zero-width characters, accents and Cyrillic or
Greek look-alike letters, leetspeak (``1gn0r3``), spaced-out letters
(``i g n o r e``, ``ig-nore``), reversed text, ROT13 and embedded base64 or hex.
Patterns cover English and common German, French, Spanish, Italian, Portuguese, Dutch,
Polish, Russian, Chinese and Japanese phrasings. Pattern matching cannot be complete (the
benchmark's held-out attacks show how far from it), so it is one layer of several: the
prompt keeps every untrusted text in delimited data sections, and the grounding guard
rejects replies with facts, codes or links not in the (cleaned) passages, replies that
repeat removed text or the instructions, and replies that announce a new role.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import re
import unicodedata
from typing import List, Optional, Sequence, Tuple

# ----------------------------------------------------------------------------- vocabulary
_OVERRIDE = (r"(?:ignore|ignoring|disregard|forget|override|overwrite|bypass|circumvent|skip|"
             r"abandon|discard|ditch|neglect|set aside|throw (?:away|out)|stop following|"
             r"do not follow|don't follow|disable|deactivate)")
#: Owners that make instructions clearly the assistant's.
_MINE = (r"(?:your|ur|yr|the (?:assistant|bot|chatbot|ai|model|system)'?s|system|hidden|secret|"
         r"internal|developer|default|built-in|pre-?set|safety)")
#: Words between the owner and the instructions ("your previous safety rules").
_QUAL = (r"(?:previous|prior|above|earlier|preceding|former|original|initial|current|existing|"
         r"standing|operating|core|base|safety|security|content|given|other|old|whole|entire)")
_EARLIER = r"(?:previous|prior|above|earlier|preceding|former|foregoing)"
#: "... instructions I gave" / "... instructions about the delivery": the customer's own.
_THEIRS = r"(?!\s+(?:i|we)\b|\s+(?:about|for|on|regarding|re|concerning|to|from me)\b(?!\s+you\b))"
_ORDERS = (r"(?:instructions?|prompts?|rules|guidelines|directives?|programming|guardrails|"
           r"restrictions|constraints|training|safeguards|configuration|system (?:message|prompt))")
_ROLE = (r"(?:admin|administrator|developer|dev|owner|operator|creator|programmer|engineer|"
         r"system|root|superuser|sudo|hacker|moderator|dan|stan|dude|terminal|shell|linux)")
_UNBOUND = r"(?:unrestricted|unfiltered|uncensored|unlimited|jailbroken|evil|unchained|rogue)"
_AI = r"(?:ai|assistant|bot|chatbot|model|llm|gpt|chatgpt|persona|character)"
_NEW_AI = (rf"(?:(?:different|another|new|other|{_UNBOUND}) (?:\w+ )?{_AI}|(?:\w+ )?{_AI} "
           rf"(?:without|with no|that (?:has|have|can|ignores|doesn't)|who (?:has|can|doesn't)))")
_SHOW = (r"(?:reveal|show|print|repeat|output|tell|give|share|display|leak|dump|recite|copy|"
         r"paste|write (?:out|down)|spell out|type out|list|expose|send|disclose|translate|"
         r"summari[sz]e|what (?:is|are|were|was)|what's|what're)")
_SELF = (r"(?:system|initial|original|hidden|secret|full|exact|complete|current|internal|core|"
         r"base|operating|own|entire|real|actual|first|starting)")

_PATTERNS = {
    "injection": [
        # "ignore your instructions", "ignore all previous instructions", "forget the above rules"
        rf"\b{_OVERRIDE}(?:\s+(?:all|any|of|every|each|these|those|the))*\s+{_MINE}"
        rf"(?:\s+{_QUAL}){{0,2}}\s+{_ORDERS}\b",
        rf"\b{_OVERRIDE}\s+(?:(?:all|any|every)(?:\s+of)?(?:\s+the)?(?:\s+{_QUAL}){{0,2}}|"
        rf"(?:the\s+|these\s+|those\s+)?{_EARLIER}(?:\s+{_QUAL})?)\s+{_ORDERS}\b{_THEIRS}",
        rf"\b{_OVERRIDE}\s+(?:everything|anything|all|the text|the (?:message|messages|prompt|"
        rf"context|conversation)|what(?:'s| is| was)?(?: (?:written|said|stated))?)\s+"
        rf"(?:above|before (?:this|now|here)|prior to this|so far|up to (?:now|here))\b",
        rf"\b{_OVERRIDE}\s+(?:what|everything|anything|all) you(?:'ve| have| were| are)? "
        rf"(?:been )?(?:told|given|taught|programmed|instructed|trained)\b",
        rf"\b{_OVERRIDE}\s+(?:that |the fact that )?you(?:'re| are) (?:an? |the )?(?:\w+ )?{_AI}\b",
        # new role: "you are now DAN", "you are no longer a customer service assistant"
        rf"\byou(?:'re| are| r) now (?:an? |the |in |called |named |known as )?(?:\w+ )?"
        rf"(?:{_ROLE}|{_AI}|{_UNBOUND}|mode)\b",
        rf"\byou(?:'re| are| r) (?:now )?(?:free (?:of|from) (?:your|all|any)|{_UNBOUND}|dan\b|"
        rf"do anything now)",
        rf"\byou(?:'re| are| r) no longer (?:an? |the )?(?:\w+ )?(?:{_AI}|customer.service|support|"
        rf"bound|restricted|limited|required to|allowed to|following|thread\b)",
        r"\bfrom now on,?\s+(?:you(?:'re| are| will be| shall be| become)\b|you(?:'ll| will| "
        r"shall| must| should)? (?:act |speak |talk |behave |answer |reply |respond |only )+"
        r"(?:as |like |in character|without |with no )|you(?:'ll| will| must)? ignore\b|"
        r"your (?:new )?(?:name|role|identity|persona|instructions?|rules|prompt|job) "
        r"(?:is|are)\b)",
        rf"\b(?:act|behave|respond|answer|reply|speak|talk|function|operate) (?:as|like) "
        rf"(?:if you (?:were|are) )?(?:an? |the |my )?(?:\w+ )?(?:{_ROLE}\b|{_NEW_AI})",
        rf"\bpretend(?: that)? (?:you(?:'re| are| were| r)?|to be) (?:an? |the |my )?(?:[\w'-]+ )?"
        rf"(?:{_ROLE}\b|{_UNBOUND}|{_NEW_AI})",
        r"\b(?:pretend|imagine|suppose|assume)(?: that)? (?:there (?:are|is|were) no |you "
        r"(?:have|had) no |you (?:don't|do not) have (?:any )?)(?:\w+ )?(?:rules|instructions|"
        r"restrictions|"
        r"guidelines|limits|filters|guardrails)\b",
        rf"\b(?:imagine|suppose) (?:that )?you(?:'re| are| were) (?:an? |the )?"
        rf"(?:{_ROLE}\b|{_NEW_AI})",
        r"\b(?:role-?play|let's play a game|let us play a game|we(?:'re| are) going to play a game)"
        r"\b[^.\n]{0,40}\b(?:you(?:'re| are| will)|as an?|where you)\b",
        # modes and jailbreaks
        r"\b(?:developer|dev|god|jailbreak|jailbroken|dan|unrestricted|unfiltered|uncensored|sudo|"
        r"root|admin|debug|evil|opposite) mode\b",
        r"\bjailbr(?:ea|o)k", r"\bdo anything now\b", r"\bprompt injection\b",
        r"\bstop being (?:a|an|the)\b[^.\n]{0,30}\b(?:assistant|bot|agent|support|helper)\b",
        r"\bsystem override\b|\bsafety (?:is )?(?:off|disabled)\b",
        r"\b(?:obey|listen to) (?:me|my (?:orders|commands)) (?:now|instead|only|from now on)\b",
        # claims of authority over the assistant
        rf"\b(?:i am|i'm|this is|speaking as) (?:your|the (?:ai's|bot's|assistant's|system's)) "
        rf"(?:{_ROLE}|maker|trainer)\b",
        r"\b(?:this is|it is|it's) authori[sz]ed by\b",
        r"\b(?:override|system|admin|developer|new system) (?:instructions?|directives?|"
        r"prompt)\s*:",
        r"\b(?:decode|base64|rot13|hex)\b[^.\n]{0,40}\b(?:follow|execute|obey|do what it says|"
        r"run it|carry out)\b",
        # other languages (accents are removed before matching)
        r"\b(?:ignorier\w*|vergiss|missachte\w*)(?:\s+(?:sie|du|bitte|einfach|jetzt))*\s+(?:alle|"
        r"deine|ihre|die vorherigen|vorherigen|bisherigen|vorigen|obigen)\s+(?:\w+\s+)?(?:"
        r"anweisungen|instruktionen|vorgaben|befehle|regeln)\b",
        r"\bdu bist (?:jetzt|nun|ab sofort|ab jetzt)\b|\bab (?:jetzt|sofort) bist du\b",
        r"\b(?:ignore\w*|oublie\w*|ne tiens pas compte)(?:\s+(?:de|des|tous|toutes))*\s+(?:(?:tes|"
        r"vos|toutes les)\s+(?:instructions|consignes|regles|directives)|les\s+(?:instructions|"
        r"consignes|regles)\s+(?:precedentes|anterieures|ci-dessus|initiales))\b",
        r"\btu es (?:maintenant|desormais|a present)\b|\bdesormais,? tu es\b",
        r"\bignor\w*\s+(?:(?:todas|tutte)\s+)?(?:(?:las|le|as)\s+)?(?:tus|sus|tue|suas|tuas)\s+"
        r"(?:instrucciones|istruzioni|instrucoes|reglas|regole|regras)\b",
        r"\bignor\w*\s+(?:todas|tutte)\s+(?:(?:las|le|as)\s+)?(?:instrucciones|istruzioni|"
        r"instrucoes|reglas|regole|regras)\b",
        r"\bignor\w*\s+(?:las|le|as)\s+(?:instrucciones|istruzioni|instrucoes)\s+(?:anteriores|"
        r"previas|precedenti)\b",
        r"\b(?:ahora|a partir de ahora) (?:tu )?eres\b|\b(?:ora|adesso|da ora in poi) sei\b|"
        r"\bagora (?:voce|tu) e\b",
        r"\bnegeer\s+(?:alle\s+)?(?:je|jouw|de vorige|vorige|eerdere|alle)\s+(?:\w+\s+)?"
        r"(?:instructies|regels)\b",
        r"\bje bent nu\b",
        # languages with their own scripts (matched on the text before look-alike mapping)
        r"(?:игнорир\w*|забудь\w*|проигнорир\w*)[^.\n]{0,40}(?:инструкци|правил|указани)",
        r"\bты теперь\b",
        r"忽略[^。\n]{0,12}(?:指令|指示|说明|规则|提示)|你现在是|无视[^。\n]{0,12}(?:指令|规则)",
        r"指示を無視|命令を無視|ルールを無視|今からあなたは",
        r"\b(?:zignoruj|pomin|zapomnij)\w*\b[^.\n]{0,30}\b(?:instrukcje|polecenia|zasady)\b",
        r"\bjestes teraz\b",
        # chat-template control tokens
        r"<\|[a-z_]{2,30}\|>", r"\[/?inst\]", r"<</?sys>>",
        r"</?\s*(?:system|assistant|im_start|im_end)\s*>",
        r"(?m:^\s*(?:#+\s*)?\[?(?:system|assistant)\]?\s*:)",
        r"(?m:^\s*\[(?:system|assistant)\]\s*$)",
    ],
    #: Only in documents (and replies): text that tells whoever answers customers what to say.
    "document": [
        r"\bnote to (?:the |any )?(?:ai|assistant|bot|chatbot|model|llm)s?\b",
        rf"\b{_OVERRIDE}\s+(?:all of |everything )?(?:the )?(?:above|foregoing|preceding)\b",
        r"\b(?:dear|attention|hey) (?:ai|assistant|bot|chatbot|model|llm)s?\b",
        r"\b(?:ai|assistant|chatbot|bot|language model|llm)s? (?:reading|processing|seeing|"
        r"summari[sz]ing) this\b",
        r"\b(?:tell|inform|promise) (?:every|all|each|any) (?:customers?|users?|shoppers?)\b"
        r"[^.\n]{0,60}\b(?:free|discount|codes?|100%)",
        r"\b(?:customers?|users?|shoppers?|anyone|people) (?:asking|who ask|enquiring)\b"
        r"[^.\n]{0,60}\bshould (?:be (?:told|informed|given)|hear)\b",
        r"\b(?:whenever|when|if) (?:someone|anyone|a (?:customer|user|shopper)|customers|users|"
        r"people) (?:asks?|enquires?|wants to know)\b[^.\n]{0,60}\b(?:say|tell (?:them|him|her|the "
        r"customer)|reply|respond|answer)(?: with\b| that\b|:)",
    ],
    "prompt_leak": [
        r"\bsystem[\s_-]*prompt\b", r"\bprompt (?:systeme|del sistema|do sistema|di sistema)\b",
        r"системн\w* (?:промпт|подсказк|инструкци)|系统提示|システムプロンプト",
        r"\bcontext window\b",
        r"\b(?:text|message|messages|words|everything|what) (?:that )?(?:came|comes|was|is|were) "
        r"(?:written )?(?:before|above) (?:my|this|the) (?:first )?(?:message|conversation|chat)\b",
        r"\b(?:sentence|message|text|line|words) (?:that )?you (?:were|have been|got) given\b",
        r"\b(?:output|print|dump|leak|recite|reveal|disclose|expose)\b(?:\s+(?:me|us|all|of))*\s+"
        r"your\s+(?:\w+\s+)?(?:rules|guidelines|policies)\b(?!\s+(?:for|on|about|regarding)\b)",
        r"\bsystemprompt\b", r"\bsysteem ?prompt\b",
        r"\b(?:hidden|secret|internal|confidential|underlying|meta) (?:prompt|instructions|"
        r"directives|system message|configuration)\b",
        rf"\b{_SHOW}\b(?:\s+(?:me|us|all|exactly|verbatim|of|out|back|again))*\s+(?:your|ur|"
        rf"the assistant's|the bot's)\s+(?:{_SELF}\s+)?(?:instructions|prompt|programming|"
        rf"configuration|directives|system message|initial message|guardrails|training data)\b"
        rf"(?!\s+(?:for|on|about|regarding|to|when|if)\b)",
        r"\b(?:instructions|rules|guidelines|prompt|directives) (?:that )?you (?:were|have been|"
        r"got|received|are) (?:given|told|programmed|trained|instructed|following|fed)\b"
        r"(?!\s+(?:by me|about|for|on|regarding)\b)",
        r"\bwhat (?:were|have) you been (?:told|instructed|programmed)\b|\bwhat were you "
        r"(?:told|instructed|programmed)\b",
        r"\bhow (?:were|have) you been (?:programmed|prompted|instructed|configured)\b",
        r"\b(?:repeat|print|recite|output|copy|show|reveal)\b(?:\s+(?:me|back|all|of))*\s+(?:"
        r"everything|all|the (?:text|words|message|lines|content)|what(?:'s| is| was)? (?:written|"
        r"said))\s+(?:above|before (?:this|my)|so far|preceding)\b",
        r"\b(?:word for word|verbatim)\b[^\n]{0,40}\b(?:prompt|above|everything|"
        r"your instructions)\b",
        r"\b(?:prompt|above|everything|your instructions)\b[^\n]{0,40}\b(?:word for word|"
        r"verbatim)\b",
        r"\bzeig\w*\b[^.\n]{0,20}\b(?:deine|ihre) (?:anweisungen|instruktionen)\b",
        r"\b(?:revele|montre|affiche|donne)[- ]moi (?:tes|vos) (?:instructions|consignes)\b",
        r"\b(?:muestra|revela|dime)\w*\b[^.\n]{0,20}\btus instrucciones\b",
    ],
}
_COMPILED = {kind: re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
             for kind, patterns in _PATTERNS.items()}
#: Spaced-out letters run together ("i g n o r e y o u r ...") read as one word.
_COMPACT = re.compile(
    r"ignore(?:all|your|previous|prior|the|above)+(?:instructions?|rules|prompt)|systemprompt|"
    r"developermode|jailbreak|youarenow|youarenolonger|revealyour|doanythingnow", re.IGNORECASE)

#: Control tokens of common chat templates and the markers of our prompt's sections.
_CONTROL_TOKENS = re.compile(
    r"<\|[a-z_]{2,30}\|>|</?s>|\[/?INST\]|<<\/?SYS>>|"
    r"<\s*/?\s*(?:system|user|assistant|passages?|conversation|history|question|data|"
    r"instructions?|context|documents?)\s*/?\s*>|"
    r"(?m:^\s*\[(?:system|user|assistant)\]\s*$)",
    re.IGNORECASE,
)
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f"
                        "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff]")
_LOOKALIKES = str.maketrans(
    "аеорсухіјѕԁһӏԛԝАВЕКМНОРСТХУІЈЅαβεικνορτυχΑΒΕΗΙΚΜΝΟΡΤΧΥΖ",
    "aeopcyxijsdhlqwABEKMHOPCTXYIJSabeikvoptuxABEHIKMNOPTXYZ")
_LEET = str.maketrans("013457@$!|", "oieastasil")
_MIXED_TOKEN = re.compile(r"\b(?=[\w@$!|]*[a-z])(?=[\w@$!|]*[013457@$!|])[\w@$!|]{3,}",
                          re.IGNORECASE)
_SPACED = re.compile(r"(?<![\w])(?:[a-z][ .\-_*·/]){3,}[a-z](?![\w])", re.IGNORECASE)
_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}[ :]?){12,}\b")

#: Longer text is scanned in its first and last half of this many characters, which keeps a
#: 100 KB message to about a second; the public channels' message-size limit is far below it.
MAX_SCAN_CHARS = 20_000

REDACTED = "[Part of this text was removed because it tried to give instructions to the assistant.]"


def _plain(text: str) -> str:
    """Compatibility forms folded, invisible characters and accents removed, look-alikes mapped."""
    text = unicodedata.normalize("NFKD", _INVISIBLE.sub("", text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.translate(_LOOKALIKES).replace("\u2019", "'").replace("\u2018", "'")


def _decoded(text: str) -> List[str]:
    """Readable text hidden in base64 or hex runs of ``text``."""
    found = []
    for match in _BASE64.finditer(text):
        blob = match.group(0)
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        found.append(raw.decode("utf-8", "ignore"))
    for match in _HEX.finditer(text):
        try:
            raw = bytes.fromhex(re.sub(r"[ :]", "", match.group(0)))
        except ValueError:
            continue
        found.append(raw.decode("utf-8", "ignore"))
    return [t for t in found if t and sum(ch.isprintable() for ch in t) >= 0.9 * len(t)]


def _variants(text: str) -> Tuple[List[str], List[str]]:
    """(the text as written and as an attacker may have disguised it, spaced-out runs joined)."""
    plain = _plain(text)
    leet = _MIXED_TOKEN.sub(lambda m: m.group(0).translate(_LEET), plain)
    runs = [re.sub(r"[ .\-_*·/]", "", m.group(0))
            for m in _SPACED.finditer(re.sub(r"(?<=\w) {2,}(?=\w)", " ", leet))]
    unspaced = _SPACED.sub(lambda m: re.sub(r"[ .\-_*·/]", "", m.group(0)), leet)
    native = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))  # Cyrillic stays Cyrillic
    unhyphenated = re.sub(r"(?<=[a-z])[-‐](?=[a-z])", "", leet, flags=re.IGNORECASE)
    variants = [plain, plain.replace("_", " "), leet, unspaced, unhyphenated, plain[::-1],
                codecs.encode(plain, "rot13"), native]
    variants += [_plain(t) for t in _decoded(text)]
    return list(dict.fromkeys(variants)), runs


@functools.lru_cache(maxsize=64)  # the same turn is screened as question, then as history
def _classify(text: str, kinds: Tuple[str, ...]) -> Optional[str]:
    """The first of ``kinds`` whose patterns match a variant of ``text``."""
    if not text or not text.strip():
        return None
    if len(text) > MAX_SCAN_CHARS:
        half = MAX_SCAN_CHARS // 2
        text = f"{text[:half]}\n{text[-half:]}"
    variants, runs = _variants(text)
    for kind in kinds:
        if any(_COMPILED[kind].search(v) for v in variants):
            return kind
        if kind == "injection" and any(_COMPACT.search(run) for run in runs):
            return kind
    return None


def instruction_like(text: str) -> bool:
    """True when ``text`` tries to instruct, re-program or unmask the assistant."""
    return _classify(text or "", ("prompt_leak", "injection", "document")) is not None


def user_attack(text: str) -> Optional[str]:
    """``"prompt_leak"``, ``"injection"`` or None for an ordinary customer message."""
    return _classify(text or "", ("prompt_leak", "injection"))


def spread_attack(earlier: str, latest: str) -> Optional[str]:
    """The kind of attack two consecutive customer turns make together but neither alone."""
    if not earlier or user_attack(earlier) or user_attack(latest):
        return None
    return user_attack(f"{earlier.strip()} {latest.strip()}")


def conversation_attack(question: str, history: Sequence[Tuple[str, str]] = ()) -> Optional[str]:
    """``user_attack`` of the question, or of the question joined to the last customer turn."""
    attack = user_attack(question)
    if attack:
        return attack
    earlier = next((text for who, text in reversed(list(history)) if who == "customer"), "")
    return spread_attack(str(earlier or ""), question)


def strip_control_tokens(text: str) -> str:
    """``text`` without chat-template control tokens or prompt-section markers."""
    return _CONTROL_TOKENS.sub(" ", text or "")


def split_injected(text: str) -> Tuple[str, List[str]]:
    """(cleaned text, the paragraphs that were replaced by ``REDACTED``)."""
    removed: List[str] = []
    out: List[str] = []
    for part in re.split(r"(\n\s*\n)", text or ""):
        if part.strip() and instruction_like(part):  # control tokens are evidence: check first
            removed.append(part.strip())
            out.append(REDACTED)
        else:
            out.append(strip_control_tokens(part))
    return "".join(out), removed


def neutralise(text: str) -> Tuple[str, int]:
    """(cleaned text, number of paragraphs removed) for text that goes into a prompt."""
    cleaned, removed = split_injected(text)
    return cleaned, len(removed)

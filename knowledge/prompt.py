"""The prompt: an editable template, filled with cleaned passages, turns and the question.

The template file (``prompt.template``, default ``knowledge/prompt_template.txt``)
has a ``[system]`` part and a ``[user]`` part; ``build`` returns chat messages
(``[{"role": "system", ...}, {"role": "user", ...}]``) that both generation
backends accept. Placeholders are replaced in a single pass, so a passage or a
question that contains ``{question}`` or ``[system]`` stays literal text.

Untrusted text (passages, earlier turns, the question) only ever fills the user
message's data sections (``<passages>``, ``<conversation>``, ``<question>`` in the
shipped template), after ``injection.split_injected`` has removed control tokens,
section markers and instruction paragraphs; two customer turns that attack together
(``injection.spread_attack``) are both removed. What was removed is kept on the
``Prompt`` so the grounding guard can reject a reply that repeats it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from knowledge.chunking import HEADING_SEPARATOR
from knowledge.config import PromptSettings, resolve_path
from knowledge.injection import REDACTED, spread_attack, split_injected, strip_control_tokens
from knowledge.retrieve import Passage

PLACEHOLDER = re.compile(r"\{(persona|passages|history|question)\}")
SECTION = re.compile(r"^\[(system|user)\]\s*$", re.MULTILINE)


class TemplateError(ValueError):
    """The template file is missing a part or a placeholder."""


@dataclass(frozen=True)
class Template:
    system: str
    user: str

    @classmethod
    def read(cls, path: Path) -> "Template":
        try:
            raw = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise TemplateError(f"cannot read the prompt template {path}: {exc}") from exc
        text = "\n".join(line for line in raw.splitlines() if not line.lstrip().startswith("#"))
        parts = SECTION.split(text)
        sections: Dict[str, str] = {}
        for name, body in zip(parts[1::2], parts[2::2]):
            sections[name] = body.strip()
        if "system" not in sections or "user" not in sections:
            raise TemplateError(f"{path} needs a [system] and a [user] part")
        if "{passages}" not in sections["user"] + sections["system"] or \
                "{question}" not in sections["user"] + sections["system"]:
            raise TemplateError(f"{path} must use the placeholders {{passages}} and {{question}}")
        return cls(system=sections["system"], user=sections["user"])


def _fill(template: str, values: Dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


@dataclass
class Prompt:
    """The messages to send, and the passages as the model saw them (after cleaning)."""

    messages: List[Dict[str, str]]
    passages: List[str]
    #: The untrusted paragraphs and turns that were replaced by ``REDACTED``.
    removed: List[str] = field(default_factory=list)

    @property
    def system(self) -> str:
        return self.messages[0]["content"]


class PromptBuilder:
    """Fills the template; one per process (the template is read once)."""

    def __init__(self, settings: PromptSettings) -> None:
        self.settings = settings
        self.template = Template.read(resolve_path(settings.template))

    def clean_passage(self, passage: Passage) -> Tuple[str, List[str]]:
        """A passage's text for the model: injection paragraphs removed, shortened; and those."""
        body, removed = split_injected(passage.body)
        body = body.strip()
        limit = self.settings.max_passage_chars
        if len(body) > limit:
            body = body[:limit].rsplit(" ", 1)[0] + " …"
        return body, removed

    def format_passages(self, passages: Sequence[Passage]) -> Tuple[str, List[str], List[str]]:
        blocks, cleaned, removed = [], [], []
        for number, passage in enumerate(passages, start=1):
            body, dropped = self.clean_passage(passage)
            removed += dropped
            cleaned.append(body)
            title = strip_control_tokens(passage.heading).strip()
            url = f" ({passage.url})" if passage.url else ""
            blocks.append(f"[{number}] {title}{url}\n{body}")
        return "\n\n".join(blocks), cleaned, removed

    def format_history(self, history: Sequence[Tuple[str, str]]) -> Tuple[str, List[str]]:
        """(the turns as text, what was removed); ``history`` is [(speaker, text)] oldest first,
        speaker "customer" or "assistant"."""
        turns = list(history)[-self.settings.history_turns:] if self.settings.history_turns else []
        texts = [" ".join(str(text or "").split()) for _, text in turns]
        customer = [i for i, (speaker, _) in enumerate(turns) if speaker == "customer"]
        spread = {i for a, b in zip(customer, customer[1:])
                  if spread_attack(texts[a], texts[b]) for i in (a, b)}
        lines, removed = [], []
        limit = self.settings.max_history_chars
        for number, (speaker, _) in enumerate(turns):
            if number in spread:
                clean, dropped = REDACTED, [texts[number]]
            else:
                clean, dropped = split_injected(texts[number])
            removed += dropped
            if len(clean) > limit:
                clean = clean[:limit].rsplit(" ", 1)[0] + " …"
            who = "Customer" if speaker == "customer" else "Assistant"
            lines.append(f"{who}: {clean}")
        return ("\n".join(lines) if lines else "(none)"), removed

    def build(self, question: str, passages: Sequence[Passage],
              history: Sequence[Tuple[str, str]] = ()) -> Prompt:
        block, cleaned, removed = self.format_passages(passages)
        turns, dropped = self.format_history(history)
        clean_question, from_question = split_injected(" ".join(question.split()))
        removed += dropped + from_question
        values = {"persona": self.settings.persona, "passages": block, "history": turns,
                  "question": clean_question}
        messages = [
            {"role": "system", "content": _fill(self.template.system, values)},
            {"role": "user", "content": _fill(self.template.user, values)},
        ]
        return Prompt(messages=messages, passages=cleaned, removed=removed)


def passage_label(passage: Passage) -> str:
    """"Returns Policy — The return window": how a quoted passage is introduced."""
    return passage.title + (HEADING_SEPARATOR + passage.section if passage.section else "")

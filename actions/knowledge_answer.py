"""``action_answer_product_question``: product and policy questions from the knowledge base.

Reads the customer's latest message, the product the NLU found in it (entity, which
filters the search) or remembers from earlier (``product`` slot, used only when the
question refers back to it: "is it waterproof?"), and the last few turns, and
answers through ``knowledge.assistant.KnowledgeAssistant``: retrieval from the
signed FAISS index, generation, the grounding guard, citations.

What the customer gets:
* an answer with citations ``[1]``, and the sources as ``custom`` JSON for the widget:
  ``{"sources": [{"n", "title", "url", "source"}], "answer_kind": ...}``;
* below the retrieval threshold (or when the model says it does not know) an honest
  "I don't know that one … shall I get a colleague?";
* the same offer, worded as "I can't look that up right now", when the knowledge
  base itself is unavailable (no index yet, a tampered index, a broken model).

Every run sets the slot ``knowledge_found`` (True for an answer, False otherwise), so
the rules can follow a False with the hand-off offer's affirm/deny branches. The
knowledge base (index, encoder, language model) is loaded once per action-server
process, on first use, in a worker thread; the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

logger = logging.getLogger(__name__)

KNOWLEDGE_FOUND_SLOT = "knowledge_found"
#: The domain response for "I can't look that up right now … shall I get a colleague?".
KNOWLEDGE_UNAVAILABLE = "utter_knowledge_unavailable"
#: Extra seconds beyond the generation timeout before the whole answer is abandoned.
ANSWER_MARGIN_S = 30.0

_assistant: Any = None
_assistant_lock = threading.Lock()


def shared_assistant() -> Any:
    """The process-wide ``KnowledgeAssistant`` (settings from knowledge.yml / environment)."""
    global _assistant
    with _assistant_lock:
        if _assistant is None:
            from knowledge.assistant import KnowledgeAssistant

            assistant = KnowledgeAssistant()
            _ = assistant.retriever  # load and verify the index now, not mid-answer
            _assistant = assistant
        return _assistant


def reset_shared_assistant() -> None:
    """Forget the loaded knowledge base (tests; a settings change)."""
    global _assistant
    with _assistant_lock:
        _assistant = None


def product_of(tracker: Tracker) -> Tuple[Optional[str], str]:
    """(product, "entity" | "slot"): the entity in this message wins over the slot."""
    entity = next(tracker.get_latest_entity_values("product"), None)
    if entity:
        return str(entity), "entity"
    slot = tracker.get_slot("product")
    if isinstance(slot, list):
        slot = slot[0] if slot else None
    return (str(slot), "slot") if slot else (None, "slot")


def history_of(tracker: Tracker, turns: int) -> List[Tuple[str, str]]:
    """The last ``turns`` messages before the customer's latest one, oldest first."""
    messages: List[Tuple[str, str]] = []
    for event in tracker.events:
        kind = event.get("event")
        text = event.get("text")
        if kind == "user" and text:
            messages.append(("customer", text))
        elif kind == "bot" and text:
            messages.append(("assistant", text))
    last_customer = max((i for i, (who, _) in enumerate(messages) if who == "customer"),
                        default=None)
    if last_customer is not None:
        messages = messages[:last_customer]  # the question itself and anything after it
    return messages[-turns:] if turns else []


class ActionAnswerProductQuestion(Action):
    """Answers from the knowledge base with citations, or says honestly that it can't."""

    def __init__(self, assistant: Any = None) -> None:
        self._assistant = assistant

    def name(self) -> Text:
        return "action_answer_product_question"

    def assistant(self) -> Any:
        return self._assistant if self._assistant is not None else shared_assistant()

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        question = (tracker.latest_message or {}).get("text") or ""
        product, product_from = product_of(tracker)
        try:
            assistant = await asyncio.to_thread(self.assistant)
            turns = assistant.config.prompt.history_turns
            deadline = assistant.config.generation.timeout_s + ANSWER_MARGIN_S
            answer = await asyncio.wait_for(asyncio.to_thread(
                assistant.answer, question, product=product, product_from=product_from,
                history=history_of(tracker, turns)), timeout=deadline)
        except Exception:  # noqa: BLE001 - the customer gets an offer of help, never an error
            logger.exception("the knowledge base could not answer %r", question)
            dispatcher.utter_message(response=KNOWLEDGE_UNAVAILABLE)
            return [SlotSet(KNOWLEDGE_FOUND_SLOT, False)]
        logger.info("knowledge answer (%s%s) for %r", answer.kind,
                    f": {answer.fallback_reason}" if answer.fallback_reason else "", question)
        if answer.sources:
            dispatcher.utter_message(text=answer.text, json_message={
                "sources": answer.sources, "answer_kind": answer.kind})
        else:
            dispatcher.utter_message(text=answer.text)
        found = answer.kind in ("generated", "extractive")
        return [SlotSet(KNOWLEDGE_FOUND_SLOT, found)]

"""Conversation tests that `rasa test` cannot run: replayed over the REST channel.

Rasa 3.6's story test runner rebuilds each user turn from the story file and keeps only the
intent, entities and response-selector output of the prediction, so anything else our NLU
adds to the parse data (the sentiment the escalation policy reads) never reaches the
policies there. The stories in tests/conversations/ use the same YAML format as
tests/stories/; each user text is sent to the real server, and the intent and the actions
that followed are compared with the story.
"""

import re
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import yaml

CONVERSATIONS = Path(__file__).resolve().parents[1] / "conversations"
# Actions Rasa runs on its own around every turn; stories do not list them.
IMPLICIT = {"action_listen", "action_session_start", "action_extract_slots"}
ENTITY_ANNOTATION = re.compile(r"\[([^\]]+)\](\([^)]*\)|\{[^}]*\})")


def stories() -> List[Tuple[str, List[Dict]]]:
    found = []
    for path in sorted(CONVERSATIONS.glob("*.yml")):
        for story in yaml.safe_load(path.read_text())["stories"]:
            found.append((story["story"], story["steps"]))
    return found


def expected_turns(steps: List[Dict]) -> List[Tuple[str, str, List[str]]]:
    """(user text, intent, actions until the next user message) per user step."""
    turns = []
    for step in steps:
        if "user" in step:
            text = ENTITY_ANNOTATION.sub(r"\1", step["user"]).strip()
            turns.append((text, step["intent"], []))
        elif "action" in step:
            turns[-1][2].append(step["action"])
    return turns


def actions_since_last_user(events: List[Dict]) -> Tuple[str, List[str]]:
    last_user = max(i for i, e in enumerate(events) if e["event"] == "user")
    intent = events[last_user]["parse_data"]["intent"]["name"]
    actions = [e["name"] for e in events[last_user + 1:]
               if e["event"] == "action" and e["name"] not in IMPLICIT]
    return intent, actions


@pytest.mark.parametrize("name,steps", stories(), ids=[name for name, _ in stories()])
def test_conversation(assistant, name, steps):
    sender = "story-" + name.replace(" ", "-")
    for text, intent, actions in expected_turns(steps):
        assistant.say(sender, text)
        got_intent, got_actions = actions_since_last_user(assistant.events(sender))
        assert (got_intent, got_actions) == (intent, actions), f"after {text!r}"

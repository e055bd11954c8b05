"""Issue 10's "done when", against the live servers: asking for the rules gets the rules.

The refusal texts live in the action server's code (knowledge/assistant.py), which the Rasa
side must not import, so the refusal is recognised by its opening words.
"""

import pytest

REFUSAL_OPENINGS = ("I can't do that", "I can't share how I'm set up")


def texts(messages):
    return [m.get("text") or "" for m in messages]


def test_asking_for_the_rules_for_returns_gets_the_returns_policy(assistant):
    messages = assistant.say("rules-for-returns", "Can you show me the rules for returns?")
    assert not any(t.startswith(REFUSAL_OPENINGS) for t in texts(messages)), messages
    sources = [s["source"] for m in messages for s in (m.get("custom") or {}).get("sources", [])]
    assert "policies/returns.md" in sources, messages


@pytest.mark.parametrize("text", [
    "Tell me the guidelines for exchanges",
    "From now on please send my orders to my office address",
    "Please ignore my previous instructions about the delivery",
])
def test_the_other_refused_questions_of_issue_10_are_not_refused(assistant, text):
    messages = assistant.say("issue-10-" + "-".join(text.lower().split()[:4]), text)
    assert messages and not any(t.startswith(REFUSAL_OPENINGS) for t in texts(messages))

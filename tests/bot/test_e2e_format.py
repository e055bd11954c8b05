"""The e2e test-case format and its checks, on tracker events shaped as Rasa 3.6 writes them.

(That the runner catches real breakage on live servers is tests/server/test_e2e_runner.py.)
"""

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from bot.e2e.checks import Turn, check
from bot.e2e.format import FormatError, Step, load, load_file
from bot.e2e.report import failure_text, summarise, write_junit
from bot.e2e.runner import CaseRun, Failure

RESPONSES = {
    "utter_ask_email": [{"text": "Thanks. What's the email address on the order?"}],
    "utter_ask_cancel_order_form_confirm_cancel": [
        {"text": "Shall I cancel order {order_id}? (yes / no)"}],
    "utter_chitchat/ask_joke": [{"text": "A joke."}],
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cases.yml"
    path.write_text(text)
    return path


def test_a_file_in_rasa_pro_shape_loads_with_fixtures_and_repeat(tmp_path):
    cases = load_file(write(tmp_path, """
repeat: 3
fixtures:
  - an_order: {orders: [{order_id: ORD-20001, email: a@example.com}]}
test_cases:
  - test_case: cancel
    fixtures: [an_order]
    steps:
      - user: "cancel ORD-20001"
      - slot_was_set:
          - order_id: ORD-20001
      - utter: utter_ask_email
      - bot: /email/
"""))
    assert [c.name for c in cases] == ["cancel"]
    case = cases[0]
    assert case.repeat == 3
    assert case.fixtures[0].name == "an_order"
    assert [s.kind for s in case.steps] == ["user", "slot_was_set", "utter", "bot"]
    assert case.steps[3].index == 4


@pytest.mark.parametrize("body,message", [
    ("- test_case: a\n    steps:\n      - user: hi\n      - bots: hello\n",
     "test case 'a': step 2: unknown step `bots`"),
    ("- test_case: a\n    colour: red\n    steps:\n      - user: hi\n",
     "test case 'a': unknown key(s) colour"),
    ("- test_case: a\n    steps:\n      - utter: utter_greet\n",
     "test case 'a': step 1 (`utter`) checks a turn, but no `user` step comes before it"),
    ("- test_case: a\n    steps:\n      - user: hi\n      - sentiment: angry\n",
     "test case 'a': step 2: `sentiment` is one of negative, neutral, positive"),
    ("- test_case: a\n    fixtures: [nope]\n    steps:\n      - user: hi\n",
     "test case 'a': unknown fixture(s) nope"),
    ("- steps:\n      - user: hi\n", "test case #1: each test case needs `test_case: <name>`"),
    ("- test_case: a\n    steps:\n      - user: hi\n        bot: hello\n",
     "step 1 must be a mapping with exactly one key"),
    ("- test_case: a\n    steps:\n      - user: hi\n      - bot: /unclosed(/\n",
     "bad regular expression"),
])
def test_a_malformed_case_is_refused_naming_file_and_case(tmp_path, body, message):
    path = write(tmp_path, "test_cases:\n  " + body)
    with pytest.raises(FormatError) as error:
        load([path])
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_a_file_without_test_cases_is_refused(tmp_path):
    with pytest.raises(FormatError, match="expected a top-level `test_cases:` list"):
        load_file(write(tmp_path, "stories: []\n"))


def turn(events, slots=None):
    return Turn("text", events, slots or {})


def user(intent="inform", sentiment=None):
    parse = {"intent": {"name": intent}}
    if sentiment:
        parse["sentiment"] = {"label": sentiment, "score": -0.8}
    return {"event": "user", "text": "text", "parse_data": parse}


def bot(text, utter_action=None, custom=None):
    return {"event": "bot", "text": text,
            "data": {"custom": custom, "buttons": None},
            "metadata": {"utter_action": utter_action} if utter_action else {}}


def step(kind, value):
    return Step(kind, value, 2)


def test_bot_and_utter_steps_match_the_messages_in_order():
    t = turn([user(), bot("first", "utter_ask_email"),
              bot("Shall I cancel order ORD-1? (yes / no)")])
    assert check(step("utter", "utter_ask_email"), t, RESPONSES) is None
    # matched by the domain's variation (placeholders match anything) when no utter_action
    assert check(step("utter", "utter_ask_cancel_order_form_confirm_cancel"), t, RESPONSES) is None
    expected, got = check(step("bot", "first"), t, RESPONSES)  # already passed
    assert expected == "bot says 'first'" and "after the 2 already matched" in got


def test_a_regex_bot_step_searches_and_an_exact_one_compares():
    t = turn([user(), bot("Order ORD-10012 is on its way!")])
    assert check(step("bot", "/ORD-10012 is on its way/"), t, RESPONSES) is None
    assert check(step("bot", "on its way"), turn(t.events), RESPONSES) is not None
    assert check(step("bot", "Order ORD-10012 is on its way!"), turn(t.events), RESPONSES) is None


def test_utter_names_a_retrieval_response_family_and_refuses_unknown_responses():
    t = turn([user(), bot("A joke.", "utter_chitchat/ask_joke")])
    assert check(step("utter", "utter_chitchat"), t, RESPONSES) is None
    assert check(step("utter", "utter_missing"), t, RESPONSES) == (
        "response utter_missing", "the domain has no response 'utter_missing'")


def test_slot_was_set_reads_the_turns_events_and_slots_the_state_after_it():
    t = turn([user(), {"event": "slot", "name": "email", "value": "x@example.com"},
              {"event": "slot", "name": "email", "value": None}], {"email": None})
    assert check(step("slot_was_set", {"email": None}), t, RESPONSES) is None
    assert check(step("slots", {"email": None}), t, RESPONSES) is None
    assert check(step("slot_was_set", ["email"]), t, RESPONSES) is None
    expected, got = check(step("slot_was_set", {"order_id": "ORD-1"}), t, RESPONSES)
    assert expected == "order_id set to 'ORD-1'" and got.startswith("order_id not set")
    assert check(step("slot_was_not_set", "email"), t, RESPONSES) == (
        "email not set in this turn", "email set to 'x@example.com'")
    assert check(step("slots", {"email": "x@example.com"}), t, RESPONSES) == (
        "email = 'x@example.com' after the turn", "email = None")


def test_actions_match_in_order_ignoring_rasas_own():
    t = turn([user(), {"event": "action", "name": "action_listen"},
              {"event": "action", "name": "cancel_order_form"},
              {"event": "action", "name": "action_cancel_order"}])
    assert check(step("action", "cancel_order_form"), t, RESPONSES) is None
    assert check(step("action", "action_cancel_order"), t, RESPONSES) is None
    expected, got = check(step("action", "cancel_order_form"), t, RESPONSES)
    assert expected == "action cancel_order_form runs after action_cancel_order"
    assert got == "actions run: cancel_order_form, action_cancel_order"


def test_custom_paths_sentiment_intent_and_handoff():
    payload = {"sources": [{"n": 1, "title": "Hiking Boots"}], "answer_kind": "generated"}
    t = turn([user("complaint", "negative"), bot("answer [1]", custom=payload)],
             {"handoff_status": "requested"})
    assert check(step("custom", {"sources": "nonempty", "sources.0.title": "Hiking Boots",
                                 "answer_kind": "/generated|extractive/"}), t, RESPONSES) is None
    assert check(step("custom", {"sources.1.title": "Hiking Boots"}), t, RESPONSES) is not None
    no_sources = turn([user(), bot("I don't know")])
    assert check(step("custom", {"sources": "nonempty"}), no_sources, RESPONSES)[1].startswith(
        "no custom payload")
    assert check(step("sentiment", "negative"), t, RESPONSES) is None
    assert check(step("sentiment", "neutral"), t, RESPONSES) == (
        "sentiment neutral", "sentiment negative (score -0.8)")
    assert check(step("intent", "complaint"), t, RESPONSES) is None
    assert check(step("handoff", "requested"), t, RESPONSES) is None
    assert check(step("handoff", "none"), t, RESPONSES) == (
        "handoff_status = None", "handoff_status = 'requested'")


def test_report_names_case_and_step_and_junit_counts_cases_over_repeats(tmp_path):
    case = load_file(write(tmp_path, """
test_cases:
  - test_case: order status
    steps:
      - user: where is ORD-10012
      - bot: /on its way/
""" ))[0]
    bad = CaseRun(case, 2, "e2e-x", [("user", "where is ORD-10012"), ("bot", "Sorry")],
                  Failure(case.steps[1], "bot says '/on its way/'", "bot messages: 'Sorry'"))
    good = CaseRun(case, 1, "e2e-y")
    text = failure_text(bad)
    assert "test case 'order status' (run 2)" in text
    assert "step 2:\n    - bot: /on its way/" in text
    assert "expected: bot says '/on its way/'" in text and "user: where is ORD-10012" in text
    summary = summarise([good, bad])
    assert (summary.passed, summary.failed) == (0, 1)
    assert "pass^2 = 0.00, pass^1 = 0.50" in summary.line()
    junit = ElementTree.parse(write_junit([good, bad], tmp_path / "junit.xml")).getroot()
    suite = junit.find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("1", "1")
    assert suite.find("testcase/failure").get("message").startswith("step 2:")

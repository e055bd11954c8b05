"""Form validation: what the customer reads and which slots the form keeps or asks again."""

from __future__ import annotations

import pytest
from action_helpers import dump, make_tracker, owner_email, run, slot_values

from actions.forms import ValidateCancelOrderForm, ValidateOrderStatusForm, ValidateReturnForm

FORMS = [
    (ValidateOrderStatusForm, "order_status_form"),
    (ValidateCancelOrderForm, "cancel_order_form"),
    (ValidateReturnForm, "return_form"),
]
ALL_EMAILS = {owner_email(f"ORD-{10000 + n}") for n in range(1, 11)}


def validate(form_cls, form_name, slots=None, **candidates):
    """Validate ``candidates`` (slots extracted this turn) with ``slots`` already set."""
    tracker = make_tracker(slots, candidates=candidates, active_loop=form_name)
    texts, events = run(form_cls(), tracker)
    return texts, slot_values(events)


def assert_no_email_leak(texts):
    for text in texts:
        assert not any(email in text for email in ALL_EMAILS), text


@pytest.mark.parametrize("form_cls, form_name", FORMS)
@pytest.mark.parametrize("typed", ["ord10025", "ORD 10025", "ord-10025", "ORD-10025", "10025"])
def test_order_id_is_normalised(db_path, form_cls, form_name, typed):
    texts, slots = validate(form_cls, form_name, order_id=typed)
    assert texts == []
    assert slots == {"order_id": "ORD-10025"}


@pytest.mark.parametrize("form_cls, form_name", FORMS)
def test_unknown_order_is_rejected_politely(db_path, form_cls, form_name):
    before = dump(db_path)
    texts, slots = validate(form_cls, form_name, order_id="ORD-99999")
    assert slots == {"order_id": None}
    assert texts == [
        "I couldn't find order ORD-99999. Order numbers look like ORD-12345; "
        "you'll find yours in your order confirmation email."
    ]
    assert dump(db_path) == before


def test_malformed_order_id_is_quoted_back(db_path):
    texts, slots = validate(ValidateOrderStatusForm, "order_status_form", order_id="my order")
    assert slots == {"order_id": None}
    assert texts[0].startswith('I couldn\'t find order "my order". Order numbers look like ORD-12345')


@pytest.mark.parametrize("form_cls, form_name", FORMS)
def test_email_of_someone_else_is_rejected_without_leaking(db_path, form_cls, form_name):
    before = dump(db_path)
    texts, slots = validate(form_cls, form_name, {"order_id": "ORD-10002"},
                            email="alessandro.phoenix@example.com")
    assert slots == {"email": None}
    assert texts == [
        "Sorry, that email address doesn't match the one on order ORD-10002. "
        "Please give me the email address you used when you placed the order."
    ]
    assert "joyce.wu@example.com" not in texts[0]
    assert_no_email_leak(texts)
    assert dump(db_path) == before


def test_matching_email_is_accepted_in_lower_case(db_path):
    texts, slots = validate(ValidateOrderStatusForm, "order_status_form",
                            {"order_id": "ORD-10002"}, email="  Joyce.Wu@Example.COM ")
    assert texts == []
    assert slots == {"email": "joyce.wu@example.com"}


def test_text_that_is_not_an_email_is_rejected(db_path):
    texts, slots = validate(ValidateOrderStatusForm, "order_status_form",
                            {"order_id": "ORD-10002"}, email="joyce at example")
    assert slots == {"email": None}
    assert texts == ['"joyce at example" doesn\'t look like an email address. '
                     "Could you type it again, like name@example.com?"]


def test_email_before_order_id_is_checked_when_the_id_arrives(db_path):
    texts, slots = validate(ValidateCancelOrderForm, "cancel_order_form",
                            email="Joyce.Wu@example.com")
    assert (texts, slots) == ([], {"email": "joyce.wu@example.com"})

    texts, slots = validate(ValidateCancelOrderForm, "cancel_order_form",
                            {"email": "joyce.wu@example.com"}, order_id="ord10001")
    assert slots == {"order_id": "ORD-10001", "email": None}
    assert texts == [
        "Sorry, that email address doesn't match the one on order ORD-10001. "
        "Please give me the email address you used when you placed the order."
    ]
    assert_no_email_leak(texts)

    texts, slots = validate(ValidateCancelOrderForm, "cancel_order_form",
                            {"email": "joyce.wu@example.com"}, order_id="ord10002")
    assert (texts, slots) == ([], {"order_id": "ORD-10002"})


@pytest.mark.parametrize("order_first", [True, False])
def test_id_and_wrong_email_in_one_message_give_one_reply(db_path, order_first):
    pair = [("order_id", "ORD-10013"), ("email", "joyce.wu@example.com")]
    candidates = dict(pair if order_first else reversed(pair))
    texts, slots = validate(ValidateReturnForm, "return_form", **candidates)
    assert slots == {"order_id": "ORD-10013", "email": None}
    assert len(texts) == 1 and "doesn't match the one on order ORD-10013" in texts[0]
    assert_no_email_leak(texts)


def test_unknown_id_with_email_only_complains_about_the_id(db_path):
    texts, slots = validate(ValidateOrderStatusForm, "order_status_form",
                            order_id="ORD-77777", email="joyce.wu@example.com")
    assert slots == {"order_id": None, "email": "joyce.wu@example.com"}
    assert len(texts) == 1 and "ORD-77777" in texts[0]


@pytest.mark.parametrize("reason", ["", "  ", "ok", " a b ", None])
def test_return_reason_needs_three_characters(db_path, reason):
    texts, slots = validate(ValidateReturnForm, "return_form",
                            {"order_id": "ORD-10025", "email": owner_email("ORD-10025")},
                            return_reason=reason)
    assert slots == {"return_reason": None}
    assert texts == ["Could you tell me in a few words why you're returning it? For example "
                     '"too small" or "arrived damaged".']


def test_return_reason_is_kept(db_path):
    texts, slots = validate(ValidateReturnForm, "return_form", return_reason="  too   small ")
    assert (texts, slots) == ([], {"return_reason": "too small"})


@pytest.mark.parametrize("answer", [True, False])
def test_confirm_cancel_passes_through(db_path, answer):
    texts, slots = validate(ValidateCancelOrderForm, "cancel_order_form",
                            {"order_id": "ORD-10001"}, confirm_cancel=answer)
    assert (texts, slots) == ([], {"confirm_cancel": answer})


def test_unreachable_store_rejects_politely(tmp_path, monkeypatch):
    monkeypatch.setenv("CSBOT_STORE_DB", str(tmp_path / "missing.db"))
    texts, slots = validate(ValidateOrderStatusForm, "order_status_form",
                            {"email": "joyce.wu@example.com"}, order_id="ORD-10002")
    assert slots == {"order_id": None}
    assert texts == ["I'm sorry, I can't reach our order system right now. Please try again "
                     "in a few minutes, or ask for a colleague and they'll help you."]
    assert not (tmp_path / "missing.db").exists()

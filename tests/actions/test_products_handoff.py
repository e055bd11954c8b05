"""Product questions and hand-offs to a human."""

from __future__ import annotations

from action_helpers import make_tracker, run

from actions.handoff import ActionHandoff
from actions.products import ActionProductInfo


def product_entity(value: str):
    return [{"entity": "product", "value": value, "start": 0, "end": len(value)}]


def test_known_product_from_entity(db_path):
    texts, events = run(ActionProductInfo(), make_tracker(
        text="how much are the hiking boots?", intent="product_question",
        entities=product_entity("hiking boots")))
    assert events == []
    assert texts == [
        "Hiking Boots by Threadline Outdoor: $139.99. Sizes: US 6-13, whole and half sizes; "
        "regular and wide widths. Materials: Waterproof nubuck leather and mesh upper, breathable "
        "membrane, rubber lug outsole. Care: Brush off dirt, rinse with clean water, air-dry away "
        "from heat, re-wax the leather. Warranty: 2-year warranty on sole bonding and seams. "
        "In stock (37 available)."
    ]


def test_out_of_stock_product_says_so(db_path):
    texts, _ = run(ActionProductInfo(), make_tracker(
        text="is the michael kors jacket available", entities=product_entity("michael kors jacket")))
    assert texts[0].startswith("Michael Kors Jacket by Michael Kors: $298.00.")
    assert texts[0].endswith("It's currently out of stock; please check back soon.")


def test_follow_up_question_uses_the_product_slot(db_path):
    texts, _ = run(ActionProductInfo(), make_tracker(
        {"product": "guess jeans"}, text="what are they made of?"))
    assert texts[0].startswith("Guess Jeans by Guess: $98.00.")


def test_product_named_in_the_message_beats_an_old_slot(db_path):
    texts, _ = run(ActionProductInfo(), make_tracker(
        {"product": "guess jeans"}, text="and the rain jacket?"))
    assert texts[0].startswith("Rain Jacket by Threadline Outdoor: $119.00.")


def test_unknown_product(db_path):
    texts, _ = run(ActionProductInfo(), make_tracker(
        text="do you sell a hoverboard", entities=product_entity("hoverboard")))
    assert texts == ['Sorry, I don\'t have a product called "hoverboard" in our catalogue. You can '
                     "ask me about a specific item, for example the hiking boots, the rain jacket "
                     "or the Guess jeans."]


def test_ambiguous_product_lists_the_candidates(db_path):
    texts, _ = run(ActionProductInfo(), make_tracker(
        text="tell me about tommy hilfiger", entities=product_entity("tommy hilfiger")))
    assert texts == ['I have a few products that match "tommy hilfiger": Tommy Hilfiger Boots, '
                     "Tommy Hilfiger Jacket, Tommy Hilfiger Jeans and Tommy Hilfiger Shirt. "
                     "Which one would you like to know about?"]


def test_missing_product_asks_which_one(db_path):
    texts, _ = run(ActionProductInfo(), make_tracker(text="what sizes do you have?"))
    assert texts == ["Which product would you like to know about? You can ask me about a specific "
                     "item, for example the hiking boots, the rain jacket or the Guess jeans."]


def test_handoff_is_recorded(db):
    tracker = make_tracker(text="I want to talk to a real person", intent="request_human",
                           sender_id="conv-42")
    texts, events = run(ActionHandoff(), tracker)
    assert events == []
    rows = db.execute("SELECT * FROM handoffs").fetchall()
    assert len(rows) == 1
    row = rows[0]
    assert (row["conversation_id"], row["intent"], row["last_message"], row["status"]) == (
        "conv-42", "request_human", "I want to talk to a real person", "waiting")
    assert texts == [
        "Of course! I'm passing you to a colleague from our customer care team. They'll see our "
        "conversation so far, so you won't have to repeat yourself, and someone will be with you "
        f"shortly. Your reference is HO-{row['id']}."
    ]

"""``action_product_info``: answers product questions from the catalogue table.

The product named in the current message wins over the ``product`` slot, so
"and the rain jacket?" switches products; a follow-up without a product
("is it waterproof?") falls back to the slot.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.base import StoreAction, in_thread
from actions.formatting import money
from actions.records import Product
from actions.store import Store

LOW_STOCK = 10
EXAMPLES = "for example the hiking boots, the rain jacket or the Guess jeans"
ASK_FOR_PRODUCT = (
    "Which product would you like to know about? You can ask me about a specific item, "
    f"{EXAMPLES}."
)


def stock_text(stock: int) -> str:
    """Availability the way a shop assistant would say it."""
    if stock <= 0:
        return "It's currently out of stock; please check back soon."
    if stock < LOW_STOCK:
        return f"Only {stock} left in stock."
    return f"In stock ({stock} available)."


def describe(product: Product) -> str:
    """Price, sizes, materials, care, warranty and stock of one product."""
    return (
        f"{product.name} by {product.brand}: {money(product.price)}. "
        f"Sizes: {product.sizes}. Materials: {product.materials}. "
        f"Care: {product.care} Warranty: {product.warranty}. {stock_text(product.stock)}"
    )


def _listing(names: List[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


class ActionProductInfo(StoreAction):
    """Describes the product the customer asked about."""

    unavailable_text = (
        "I'm sorry, I can't reach our product catalogue right now. Please try again in a few "
        "minutes, or ask for a colleague and they'll help you."
    )

    def name(self) -> Text:
        return "action_product_info"

    async def _resolve(self, store: Store, tracker: Tracker) -> tuple:
        """(what the customer called it, matching products), newest evidence first."""
        entity: Optional[str] = next(tracker.get_latest_entity_values("product"), None)
        if entity:
            return entity, await in_thread(store.find_products, entity)
        text = tracker.latest_message.get("text") or ""
        in_text = await in_thread(store.find_products, text) if text else []
        if len(in_text) == 1:
            return in_text[0].name, in_text
        slot = tracker.get_slot("product")
        if isinstance(slot, list):
            slot = slot[0] if slot else None
        if slot:
            return str(slot), await in_thread(store.find_products, str(slot))
        return None, []

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any],
        store: Store,
    ) -> List[Dict[Text, Any]]:
        asked, products = await self._resolve(store, tracker)
        if asked is None:
            dispatcher.utter_message(text=ASK_FOR_PRODUCT)
        elif len(products) == 1:
            dispatcher.utter_message(text=describe(products[0]))
        elif products:
            names = _listing([p.name for p in products])
            dispatcher.utter_message(
                text=f'I have a few products that match "{asked}": {names}. '
                "Which one would you like to know about?"
            )
        else:
            dispatcher.utter_message(
                text=f"Sorry, I don't have a product called \"{asked}\" in our catalogue. "
                f"You can ask me about a specific item, {EXAMPLES}."
            )
        return []

"""The action server's actions: orders, forms, hand-off, product knowledge (rasa-sdk).

The demo assistant's contract with them: docs/demo-assistant.md.

Started with ``python -m rasa_sdk --actions actions``; importing the action
modules here registers every ``Action`` subclass with the SDK's executor.
Only ``rasa_sdk`` is used: Rasa itself runs in another process and Python.
"""

from actions.forms import ValidateCancelOrderForm, ValidateOrderStatusForm, ValidateReturnForm
from actions.handoff import ActionHandoff, ActionRelayToStaff
from actions.knowledge_answer import ActionAnswerProductQuestion
from actions.orders import ActionCancelOrder, ActionOrderStatus, ActionStartReturn

__all__ = [
    "ActionAnswerProductQuestion",
    "ActionCancelOrder",
    "ActionHandoff",
    "ActionOrderStatus",
    "ActionRelayToStaff",
    "ActionStartReturn",
    "ValidateCancelOrderForm",
    "ValidateOrderStatusForm",
    "ValidateReturnForm",
]

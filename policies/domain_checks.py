"""Checks our policies run at `rasa train`: a name in `config.yml` that the domain lacks
fails training with a message that says what to add, instead of failing at the first turn."""

from __future__ import annotations

from typing import Text

from rasa.shared.core.domain import Domain
from rasa.shared.exceptions import InvalidConfigException


def require_action(policy: Text, action: Text, domain: Domain) -> None:
    if action not in domain.action_names_or_texts:
        raise InvalidConfigException(
            f"{policy}: action '{action}' is not in the domain; add it to domain.yml or set "
            f"`action` to one that is.")


def require_slot(policy: Text, slot: Text, domain: Domain) -> None:
    if slot not in [s.name for s in domain.slots]:
        raise InvalidConfigException(
            f"{policy}: slot '{slot}' is not in the domain; add it to domain.yml or set "
            f"`slot` to one that is.")

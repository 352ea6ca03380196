"""Lenient lists for structured answers: keep the usable items, drop the broken ones.

Small models often get most of a list right and one item wrong; one bad item should cost that
item, not the whole answer.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


def usable_items(value: object, model: type[M]) -> list[M]:
    """The items of ``value`` that validate as ``model`` (a non-list gives none)."""
    if not isinstance(value, list):
        return []
    kept: list[M] = []
    for item in value:
        try:
            kept.append(model.model_validate(item))
        except ValidationError:
            log.debug("dropping an unusable %s from a structured answer: %r", model.__name__, item)
    return kept

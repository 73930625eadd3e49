"""The selection a mass action receives: ``ids=1&ids=2`` or ``ids=1,2`` in the query string."""

from __future__ import annotations

from flask import request

from crmcore.errors import ValidationError

MAX_ID = 2**31 - 1


def selected_ids() -> list[int]:
    """The contact ids of the request, in order, without repeats; ValidationError naming a bad one."""
    raw = [part.strip() for value in request.args.getlist("ids") for part in value.split(",") if part.strip()]
    ids: list[int] = []
    for index, value in enumerate(raw):
        if not value.isdigit() or not 0 < int(value) <= MAX_ID:
            raise ValidationError({f"ids[{index}]": [f"{value!r} is not a contact id"]})
        ids.append(int(value))
    return list(dict.fromkeys(ids))

"""Who is asking. Until sign-in lands, requests act as the system (the API is open)."""

from __future__ import annotations

from flask import g, has_request_context

from crmcore.models import User


def request_user() -> User | None:
    if not has_request_context():
        return None
    return g.get("crm_user")

"""French and English with Flask-Babel: the user's preference, else the browser's language."""

from __future__ import annotations

from flask import Flask, request, session
from flask_babel import Babel

LANGUAGES = ("en", "fr")


def select_locale() -> str:
    from crmcore.auth import request_user

    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    user = request_user()
    if user is not None and user.language in LANGUAGES:
        return user.language
    return request.accept_languages.best_match(LANGUAGES) or "en"


def init_i18n(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    Babel(app, locale_selector=select_locale)

"""Server-rendered pages (Jinja). Views are thin: they call services and render templates."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, redirect, render_template, request, url_for
from flask_babel import get_locale
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket

from crmcore.errors import CrmError

bp = Blueprint("web", __name__)


class _CompiledTemplates(BytecodeCache):
    """Compiled templates shared by every application of the process (keyed by name and source checksum),
    so each new application (tests build many) does not compile the same templates again."""

    def __init__(self) -> None:
        self._store: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._store.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._store[bucket.key] = bucket.bytecode_to_string()


_COMPILED_TEMPLATES = _CompiledTemplates()


@bp.route("/")
def index() -> Any:
    return redirect(url_for("contact_pages.index"))


def crm_error_page(error: CrmError) -> Any:
    return render_template("error.html", error=error), error.status


def _main_menu() -> list[Any]:
    """The plugins' entries of the main menu for the current user (base.html)."""
    from flask import current_app

    from crmcore.auth import request_user
    from crmcore.web.menu import menu_for_request

    return menu_for_request(current_app, request_user(), str(get_locale() or "en"))


def init_web(app: Flask) -> None:
    from crmcore.auth import request_user
    from crmcore.web import admin, auth_views, contacts, duplicates
    from crmcore.web import imports as import_pages
    from crmcore.web.i18n import init_i18n
    from crmcore.web.labels import ui
    from crmcore.web.messages import translate

    init_i18n(app)
    app.register_blueprint(bp)
    app.register_blueprint(auth_views.bp)
    app.register_blueprint(contacts.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(duplicates.bp)
    app.register_blueprint(import_pages.bp)
    app.jinja_env.globals["ui"] = ui
    app.jinja_env.bytecode_cache = _COMPILED_TEMPLATES
    app.jinja_env.filters["crm_message"] = translate
    app.jinja_env.globals["crm_main_menu"] = _main_menu

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"crm_user": request_user(), "current_locale": str(get_locale() or "en"), "request": request}

"""Server-rendered pages (Jinja). Views are thin: they call services and render templates."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, redirect, render_template, request, url_for
from flask_babel import get_locale

from crmcore.errors import CrmError

bp = Blueprint("web", __name__)


@bp.route("/")
def index() -> Any:
    return redirect(url_for("api-docs.openapi_swagger_ui"))


def crm_error_page(error: CrmError) -> Any:
    return render_template("error.html", error=error), error.status


def init_web(app: Flask) -> None:
    from crmcore.auth import request_user
    from crmcore.web import auth_views
    from crmcore.web.i18n import init_i18n

    init_i18n(app)
    app.register_blueprint(bp)
    app.register_blueprint(auth_views.bp)

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"crm_user": request_user(), "current_locale": str(get_locale() or "en"), "request": request}

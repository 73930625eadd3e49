"""Server-rendered pages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, render_template_string

from crmcore.errors import CrmError

bp = Blueprint("web", __name__)


@bp.route("/")
def index() -> str:
    return render_template_string(
        "<!doctype html><title>crmcore</title><h1>crmcore</h1>"
        "<p><a href='/api/docs'>API documentation</a></p>"
    )


def crm_error_page(error: CrmError) -> Any:
    return render_template_string(
        "<!doctype html><title>{{ e.status }}</title><p>{{ e.message }}</p>", e=error
    ), error.status


def init_web(app: Flask) -> None:
    app.register_blueprint(bp)

"""``/api/v1/plugins``: the same report as ``crm plugins --json``."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from crmcore.api.schemas import PluginSchema

blp = Blueprint("plugins", __name__, url_prefix="/api/v1/plugins", description="Installed plugins and their status")


@blp.route("")
@blp.response(200, PluginSchema(many=True))
def plugins() -> Any:
    """Every plugin: version, status (loaded, disabled, failed), error, hooks implemented, recent incidents."""
    from crmcore.cli import plugins_report

    return plugins_report()

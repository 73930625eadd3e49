"""``/api/v1/plugins``: the same report as ``crm plugins --json``."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from crmcore.api.schemas import PluginSchema

blp = Blueprint(
    "plugins", __name__, url_prefix="/api/v1/plugins", description="Installed plugins and their status"
)


@blp.route("")
@blp.response(200, PluginSchema(many=True))
def plugins() -> Any:
    """Every plugin: version, status (loaded, disabled, failed), error, hooks implemented, recent incidents."""
    from crmcore.cli import plugins_report

    return plugins_report()


@blp.route("/channels")
@blp.response(200)
def channels() -> Any:
    """Communication channels contributed by plugins (email, SMS, WhatsApp...)."""
    from crmcore.contributions import localize
    from crmcore.services.contributions import channels as all_channels

    return [
        {
            "key": c.key,
            "label": localize(c.label),
            "target": c.target,
            "consent": c.consent,
            "has_subject": c.has_subject,
            "max_length": c.max_length,
        }
        for c in all_channels().values()
    ]

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from crmcore.extensions import db
from crmcore.models import PluginIncident
from crmcore.state import plugin_host

log = logging.getLogger("crmcore.plugins")

RECENT_INCIDENTS = 20


def full_report() -> list[dict[str, Any]]:
    """Every plugin with its status, error and hooks, plus incidents recorded by any process."""
    report = plugin_host().report()
    try:
        rows = db.session.scalars(select(PluginIncident).order_by(PluginIncident.id.desc()).limit(500)).all()
    except SQLAlchemyError:  # database not migrated yet: the in-process report is still useful
        db.session.rollback()
        log.debug("plugin incidents unavailable", exc_info=True)
        rows = []
    stored: dict[str, list[dict[str, str]]] = {}
    for row in reversed(rows):
        stored.setdefault(row.plugin, []).append(
            {"hook": row.hook, "error": row.error, "at": row.at.isoformat(timespec="seconds")}
        )
    for item in report:
        # Incidents met while the app started are only in memory (the database may not be migrated then);
        # run-time ones are stored, possibly by another process. Show both, oldest first, once each.
        merged = {
            (i["hook"], i["error"], i["at"]): i for i in item["incidents"] + stored.get(item["name"], [])
        }
        item["incidents"] = sorted(merged.values(), key=lambda i: i["at"])[-RECENT_INCIDENTS:]
    return report

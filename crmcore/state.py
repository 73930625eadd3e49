"""Per-application state kept in ``app.extensions["crm"]``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import current_app

if TYPE_CHECKING:
    from crmcore.contributions import Channel, FieldDef, MenuItem, Migrations
    from crmcore.plugins import PluginHost


@dataclass
class CrmState:
    host: PluginHost
    #: Custom fields contributed by plugins (admin-defined ones live in the database).
    plugin_fields: list[FieldDef] = field(default_factory=list)
    channels: dict[str, Channel] = field(default_factory=dict)
    #: (plugin name, migrations) in the order ``crm db upgrade`` applies them.
    migrations: list[tuple[str, Migrations]] = field(default_factory=list)
    #: (plugin name, item) of the main menu, checked and sorted once (:mod:`crmcore.web.menu`).
    menu_items: list[tuple[str, MenuItem]] = field(default_factory=list)
    #: The last copy of the custom fields and lists read (:mod:`crmcore.services.reference`).
    reference: Any = None


def crm_state() -> CrmState:
    return current_app.extensions["crm"]


def plugin_host() -> PluginHost:
    return crm_state().host

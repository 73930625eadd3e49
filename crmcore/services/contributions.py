"""Plugin contributions for one contact or one user, collected safely (a raising plugin is skipped)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from markupsafe import Markup, escape

from crmcore.contributions import Action, Tab, localize
from crmcore.models import Contact, User
from crmcore.state import crm_state, plugin_host

log = logging.getLogger("crmcore.plugins")


@dataclass
class RenderedTab:
    key: str
    label: str
    plugin: str
    order: int
    count: int | None
    html: Markup
    error: str | None = None


def contact_tabs(contact: Contact, user: User | None) -> list[tuple[str, Tab]]:
    tabs = plugin_host().collect("contact_tabs", contact=contact, user=user)
    return sorted(tabs, key=lambda item: (item[1].order, item[1].key))


def render_tabs(contact: Contact, user: User | None, language: str | None = None) -> list[RenderedTab]:
    """Every tab rendered; a tab whose ``render`` raises becomes a small error box, the rest still render."""
    rendered = []
    for plugin, tab in contact_tabs(contact, user):
        try:
            html, error = Markup(tab.render(contact)), None
        except Exception as exc:
            plugin_host().incident(plugin, "contact_tabs.render", exc)
            error = f"The {plugin} plugin could not show this tab."
            html = Markup('<div class="plugin-error" role="alert">{}</div>').format(escape(error))
        rendered.append(
            RenderedTab(tab.key, localize(tab.label, language), plugin, tab.order, tab.count, html, error)
        )
    return rendered


def contact_actions(contact: Contact, user: User | None) -> list[tuple[str, Action]]:
    actions = plugin_host().collect("contact_actions", contact=contact, user=user)
    return sorted(actions, key=lambda item: (item[1].order, item[1].key))


def mass_actions(user: User | None) -> list[tuple[str, Action]]:
    actions = plugin_host().collect("register_mass_actions", user=user)
    return sorted(actions, key=lambda item: (item[1].order, item[1].key))


def channels() -> dict[str, object]:
    return dict(crm_state().channels)

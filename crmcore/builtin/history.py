"""Built-in plugin: the History tab, a readable diff of every change."""

from __future__ import annotations

from flask import render_template

from crmcore.plugin_api import Contact, Tab, hookimpl


def _render(contact: Contact) -> str:
    from crmcore.services.history import entries

    return render_template("builtin/history_tab.html", contact=contact, entries=entries(contact.id))


@hookimpl
def contact_tabs(contact: Contact) -> list[Tab]:
    return [Tab(key="history", label={"en": "History", "fr": "Historique"}, render=_render, order=90)]

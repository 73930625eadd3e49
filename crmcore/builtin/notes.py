"""Built-in plugin: the Notes tab (internal and customer notes)."""

from __future__ import annotations

from flask import render_template

from crmcore.plugin_api import Contact, Tab, hookimpl


def _render(contact: Contact) -> str:
    from crmcore.services.notes import list_notes

    return render_template(
        "builtin/notes_tab.html", contact=contact, notes=list_notes(contact.id, include_deleted=True)
    )


@hookimpl
def contact_tabs(contact: Contact) -> list[Tab]:
    return [Tab(key="notes", label={"en": "Notes", "fr": "Notes"}, render=_render, order=20)]

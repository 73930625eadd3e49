"""The main menu: entries contributed by plugins (``register_menu_items``) beside the core's own.

The items are collected and checked once per application (:func:`collect_menu_items`, called by the
app factory once every blueprint is attached); each page then builds the menu of its user
(:func:`main_menu`): admin-only items dropped for others, labels in the user's language, the
current page's item marked active, items of one section grouped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Flask, request, url_for
from werkzeug.routing import BuildError

from crmcore.contributions import Label, MenuItem, localize

if TYPE_CHECKING:
    from crmcore.models import User
    from crmcore.plugins import PluginHost

HOOK = "register_menu_items"

#: Keys of the core's own entries (``#nav-contacts``, ``#nav-admin``).
RESERVED_KEYS = frozenset({"contacts", "admin"})

#: Headings of the usual sections, used when no item of the section gives a ``section_label``.
SECTION_LABELS: dict[str, Label] = {
    "commercial": {"en": "Sales", "fr": "Commercial"},
    "communication": {"en": "Communication", "fr": "Communication"},
    "marketing": {"en": "Marketing", "fr": "Marketing"},
    "accounting": {"en": "Accounting", "fr": "Comptabilité"},
    "tools": {"en": "Tools", "fr": "Outils"},
}


def collect_menu_items(app: Flask, host: PluginHost) -> list[tuple[str, MenuItem]]:
    """Every valid menu item as ``(plugin, item)``, sorted; the invalid ones become incidents."""
    adapter = app.url_map.bind("localhost")
    seen: set[str] = set(RESERVED_KEYS)
    items: list[tuple[str, MenuItem]] = []
    for plugin, item in host.collect(HOOK):
        if item.key in seen:
            host.incident(plugin, HOOK, ValueError(f"menu item {item.key!r}: the key is already taken"))
            continue
        if item.endpoint is not None:
            if item.endpoint not in app.view_functions:
                host.incident(
                    plugin, HOOK, ValueError(f"menu item {item.key!r}: unknown endpoint {item.endpoint!r}")
                )
                continue
            try:
                adapter.build(item.endpoint, {})
            except BuildError:
                host.incident(
                    plugin,
                    HOOK,
                    ValueError(
                        f"menu item {item.key!r}: endpoint {item.endpoint!r} needs arguments; give a url instead"
                    ),
                )
                continue
        seen.add(item.key)
        items.append((plugin, item))
    return sorted(items, key=lambda pair: (pair[1].order, pair[1].key))


@dataclass
class MenuLink:
    key: str
    label: str
    href: str
    plugin: str
    active: bool = False


@dataclass
class MenuSection:
    key: str
    label: str
    links: list[MenuLink] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return any(link.active for link in self.links)


def _is_active(item: MenuItem, href: str) -> bool:
    if item.endpoint is not None and request.endpoint == item.endpoint:
        return True
    parts = urlsplit(href)
    if parts.netloc:  # an external address is never the current page
        return False
    path = parts.path or "/"
    if path == "/":
        return request.path == "/"
    return request.path == path or request.path.startswith(path.rstrip("/") + "/")


def main_menu(
    items: list[tuple[str, MenuItem]], user: User | None, language: str | None
) -> list[MenuLink | MenuSection]:
    """The plugin part of the main menu for ``user``: links and sections, in order."""
    if user is None:
        return []
    entries: list[MenuLink | MenuSection] = []
    sections: dict[str, MenuSection] = {}
    section_labels: dict[str, Label] = {}
    for _plugin, item in items:
        if item.section and item.section_label and item.section not in section_labels:
            section_labels[item.section] = item.section_label
    for plugin, item in items:
        if item.admin_only and not user.is_admin:
            continue
        href = url_for(item.endpoint) if item.endpoint is not None else str(item.url)
        link = MenuLink(item.key, localize(item.label, language), href, plugin, _is_active(item, href))
        if item.section is None:
            entries.append(link)
            continue
        section = sections.get(item.section)
        if section is None:
            heading = section_labels.get(item.section) or SECTION_LABELS.get(item.section)
            label = localize(heading, language) if heading else item.section.replace("_", " ").capitalize()
            section = sections[item.section] = MenuSection(item.section, label)
            entries.append(section)
        section.links.append(link)
    return entries


def menu_for_request(app: Flask, user: User | None, language: str | None) -> list[Any]:
    from crmcore.state import CrmState

    state: CrmState = app.extensions["crm"]
    return main_menu(state.menu_items, user, language)

"""The crmcore hook specification: the whole contract between the core and its plugins.

This module is the reference. Every hook is type-annotated and its docstring says what it
receives, what it returns, when it is called and how results are combined. ``docs/plugins.md``
documents each hook with an example (a test fails when one is missing there).

Conventions
-----------
* ``register_*`` hooks collect definitions once per application (fields, channels, blueprints,
  commands, migrations, menu items). ``contact_*`` hooks return contributions for one contact (tabs, actions)
  or validate one contact. ``contact_<event>`` hooks are notifications after a change.
* Plugins implement hooks with :data:`crmcore.plugin_api.hookimpl` and may accept fewer arguments
  than the spec lists (pluggy passes only the ones named), so specs can grow without breaking them.
* **Collection hooks** (``register_*``, ``contact_tabs``, ``contact_actions``, ``register_mass_actions``):
  the core calls each implementation on its own. One that raises or returns an invalid
  contribution is logged with its plugin name and skipped; the others still count. No hook is
  ``firstresult``: every implementation's contributions are combined, then sorted by ``order``.
* **Data hooks** (``contact_validate`` and the events) run inside the service's transaction. An
  exception propagates, the transaction is rolled back and nothing is stored.
* ``user`` is the acting :class:`crmcore.plugin_api.User`, or ``None`` for the system (CLI, jobs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    from flask import Blueprint, Flask

    from crmcore.contributions import Action, Channel, FieldDef, MenuItem, Migrations, Problem, Tab
    from crmcore.models import Contact, User

hookspec = pluggy.HookspecMarker("crm")


# ---------------------------------------------------------------------------------------------
# Lifecycle
# ---------------------------------------------------------------------------------------------


@hookspec
def crm_app_ready(app: Flask) -> None:
    """Called once per application, at the end of :func:`crmcore.create_app`.

    Every enabled plugin is registered, its blueprints are attached and the configuration is
    final. Use it to read settings or prepare caches; do not touch the database here (it may
    not be migrated yet). An exception is logged with the plugin name and marks the plugin
    ``failed`` (fatal when ``CRM_STRICT_PLUGINS`` is set). Return value is ignored.
    """


# ---------------------------------------------------------------------------------------------
# Definitions collected once per application
# ---------------------------------------------------------------------------------------------


@hookspec
def register_custom_fields() -> Iterable[FieldDef]:
    """Return the custom fields this plugin adds to contacts.

    Called once when the application starts; definitions are merged with the ones an admin
    made at runtime (a key defined twice is refused and logged, the first wins: admin first,
    then plugins in registration order). Values are stored in the contact's ``custom`` JSON
    column under ``FieldDef.key``; no schema change is needed.
    """


@hookspec
def register_channels() -> Iterable[Channel]:
    """Return the communication channels this plugin provides (email, SMS, WhatsApp...).

    Called once when the application starts. Channel keys are unique across plugins (a
    duplicate is refused and logged). The core checks consent before calling
    ``Channel.send`` and keeps the message log; the plugin only delivers.
    """


@hookspec
def register_blueprints() -> Iterable[Blueprint]:
    """Return Flask blueprints: routes, templates (under ``templates/crm_<name>/``) and static files.

    Called once in :func:`crmcore.create_app`, after the core's own blueprints. Give each
    blueprint a ``url_prefix`` under ``/plugins/<name>`` or ``/api/v1/<name>`` so paths never
    clash. Routes must check access with :func:`crmcore.plugin_api.get_contact_for`.
    """


@hookspec
def register_commands() -> Iterable[click.Command]:
    """Return click commands (or groups) added to the ``crm`` command line.

    Called once when the CLI starts. Commands run inside the application context. A command
    whose name is already taken is skipped and logged.
    """


@hookspec
def register_migrations() -> Migrations | None:
    """Return where this plugin's Alembic history lives, or None if it has no tables.

    ``crm db upgrade`` applies the core history first, then each enabled plugin's in
    registration order. Each plugin history has its own version table
    (``<prefix>_alembic_version``) and all its tables start with ``<prefix>_``.
    """


@hookspec
def register_menu_items() -> Iterable[MenuItem]:
    """Return entries for the main menu in the page header (the plugin's module pages).

    Called once per application, after every blueprint is attached. Each item is checked then:
    an ``endpoint`` that does not exist (or needs arguments), a key already taken (``contacts``
    and ``admin`` are the core's) or an implementation that raises is skipped and recorded as an
    incident of the plugin; the menu still renders. Items are sorted by ``MenuItem.order`` (then
    key); items sharing a ``section`` are grouped under one heading placed where its first item
    would be. Labels are shown in the user's language, ``admin_only`` items to administrators
    only, and the item of the current page is highlighted (``aria-current="page"``).
    """


# ---------------------------------------------------------------------------------------------
# Contributions for one contact (UI)
# ---------------------------------------------------------------------------------------------


@hookspec
def contact_tabs(contact: Contact, user: User | None) -> Iterable[Tab]:
    """Return tabs to show on ``contact``'s page (related modules: invoices, messages...).

    Called every time the page is built, only for a user allowed to read the contact. Tabs of
    all plugins are sorted by ``Tab.order``. ``Tab.render`` is called lazily; if it raises, the
    tab shows a small error box and the rest of the page renders.
    """


@hookspec
def contact_actions(contact: Contact, user: User | None) -> Iterable[Action]:
    """Return entries for ``contact``'s action menu (send SMS, export vCard, print envelope...).

    Called every time the page is built. Return nothing when the action does not apply (for
    example no phone number). Actions of all plugins are sorted by ``Action.order``.
    """


@hookspec
def register_mass_actions(user: User | None) -> Iterable[Action]:
    """Return actions offered on a selection of contacts in the list view.

    Called when the list page is built. The selected contact ids are sent to ``Action.url``
    as repeated ``ids`` parameters; the target route must check access for each id.
    """


# ---------------------------------------------------------------------------------------------
# Contact data: validation and events (run inside the service transaction)
# ---------------------------------------------------------------------------------------------


@hookspec
def contact_validate(
    data: Mapping[str, Any], contact: Contact | None, user: User | None
) -> Iterable[Problem] | None:
    """Check a contact before it is saved; return problems to refuse the save.

    ``data`` is the complete record as it will be stored, in the API's JSON shape; ``contact``
    is the stored contact for an update, None for a creation. Called by the service after the
    core's own validation and before anything is written. Every implementation is called and
    all problems are combined into one 422 answer (``Problem.field`` names the field, or None
    for the whole record). Do not write to the database here.
    """


@hookspec
def contact_created(contact: Contact, user: User | None, source: str) -> None:
    """Notification: ``contact`` was created (``source``: ui, api, web_form, inbound, cli).

    Called inside the creating transaction, after the contact has its id and number, once per
    contact, also for batches (``create_contacts``: the contacts of the batch are read with one
    query, with their owners; their other lists load when read). Raising rolls back the creation
    (the whole batch). Imports call :func:`contacts_imported` instead.
    """


@hookspec
def contacts_imported(contact_ids: Sequence[int], batch: str, user: User | None, source: str) -> None:
    """Notification: an import (``batch``, the import's id) created the contacts ``contact_ids``.

    Called inside the transaction of each chunk of the import (up to 2,000 contacts, the
    organizations it created included), after the rows are written. Imports do not call
    :func:`contact_created`: reading every new contact once per implementation would cost an import
    more than writing it; an implementation reads the contacts it needs, with one query. Raising
    rejects the chunk, which is then created record by record (one call each), so that only the
    records it raises for are rejected with its message.
    """


@hookspec
def contact_updated(
    contact: Contact, changes: Mapping[str, tuple[Any, Any]], user: User | None, source: str
) -> None:
    """Notification: ``contact`` was changed; ``changes`` maps each changed field to ``(old, new)``.

    Called inside the updating transaction, after the change is written and audited. Raising
    rolls back the update.
    """


@hookspec
def contact_deleted(contact: Contact, user: User | None, source: str) -> None:
    """Notification: ``contact`` was deleted (soft delete: it can be restored).

    Keep your rows: they come back with :func:`contact_restored`. Raising rolls back the delete.
    """


@hookspec
def contact_restored(contact: Contact, user: User | None, source: str) -> None:
    """Notification: a deleted ``contact`` was restored. Raising rolls back the restore."""


@hookspec
def contact_merged(survivor: Contact, merged: Sequence[Contact], merge_id: int, user: User | None) -> None:
    """Move your own rows from each of ``merged`` to ``survivor``.

    Called inside the merge transaction, after the core has moved its own data. Remember what
    you moved under ``merge_id`` so :func:`contact_merge_undone` can put it back. Raising
    aborts the whole merge.
    """


@hookspec
def contact_merge_undone(
    survivor: Contact, restored: Sequence[Contact], merge_id: int, user: User | None
) -> None:
    """Give back the rows you moved for merge ``merge_id`` to the ``restored`` contacts.

    Called inside the undo transaction, after the core has restored its own data. Raising
    aborts the undo.
    """

"""Database migrations: the core history, then one history per enabled plugin.

Every history uses the same ``env.py`` logic (:func:`run_env`); a plugin's ``env.py`` is two lines
that call it through ``crmcore.plugin_api.run_migrations``.
"""

from __future__ import annotations

from typing import Any

import flask_migrate
from alembic import context

from crmcore.app import CORE_MIGRATIONS
from crmcore.extensions import db
from crmcore.state import crm_state

CORE_VERSION_TABLE = "alembic_version"


def _x_args(plugin: str, prefix: str) -> list[str]:
    return [f"plugin={plugin}", f"prefix={prefix}"]


def histories() -> list[tuple[str, str, list[str]]]:
    """``(name, directory, x-arguments)`` for core then each enabled plugin, in upgrade order."""
    items = [("core", CORE_MIGRATIONS, [])]
    for plugin, migrations in crm_state().migrations:
        items.append((plugin, migrations.directory, _x_args(plugin, migrations.prefix)))
    return items


def upgrade_all() -> None:
    """Apply every pending migration: core first, then each enabled plugin. Idempotent."""
    for _name, directory, x_arg in histories():
        # "heads": independent branches (features developed in parallel) all get applied.
        flask_migrate.upgrade(directory=directory, revision="heads", x_arg=x_arg)


def plugin_history(plugin: str) -> tuple[str, list[str]]:
    for name, directory, x_arg in histories():
        if name == plugin:
            return directory, x_arg
    raise LookupError(f"plugin {plugin!r} is not enabled or has no migrations")


def _plugin_prefixes() -> list[str]:
    return [migrations.prefix for _plugin, migrations in crm_state().migrations]


def run_env() -> None:
    """The body of every ``env.py``: run migrations for the history named by the ``-x`` arguments."""
    x = context.get_x_argument(as_dictionary=True)
    prefix = x.get("prefix")
    version_table = f"{prefix}_alembic_version" if prefix else CORE_VERSION_TABLE
    others = [p for p in _plugin_prefixes() if p != prefix]

    def owns(table_name: str) -> bool:
        if prefix:
            return table_name.startswith(prefix + "_")
        return not any(table_name.startswith(p + "_") for p in others)

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        table_name = name if type_ == "table" else getattr(table, "name", None)
        if table_name is None:
            return True
        if table_name.endswith("alembic_version"):
            return False
        if reflected and compare_to is None and type_ == "table" and table_name not in db.metadata.tables:
            return False  # never drop a table this history does not know (another plugin's, a removed one)
        return owns(table_name)

    engine = db.engine
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=db.metadata,
            version_table=version_table,
            include_object=include_object,
            compare_type=True,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()

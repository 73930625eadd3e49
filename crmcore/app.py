"""The application factory: configuration, database, plugin manager, blueprints, in that order."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from flask import Flask
from sqlalchemy import event

from crmcore import __version__
from crmcore.config import build as build_config
from crmcore.contributions import localize
from crmcore.extensions import db, migrate
from crmcore.plugins import Incident, PluginHost
from crmcore.state import CrmState

log = logging.getLogger("crmcore")

CORE_MIGRATIONS = str(Path(__file__).parent / "migrations")


def create_app(config: Mapping[str, Any] | str | os.PathLike[str] | None = None) -> Flask:
    """Create a crmcore application.

    ``config`` is either a mapping applied over defaults, config file and ``CRM_*`` variables,
    or the path of a TOML config file. Plugins are discovered and registered here, never at import.
    """
    settings = build_config(config)
    app = Flask("crmcore", instance_path=settings.get("INSTANCE_PATH") or None)
    app.config.update(settings)
    app.config["SECRET_KEY"] = settings["SECRET_KEY"]
    _configure_database(app)

    # Plugins are registered before the models are used so their tables join the metadata.
    host = PluginHost(strict=bool(app.config["STRICT_PLUGINS"]))
    state = CrmState(host=host)
    app.extensions["crm"] = state
    host.load(
        enabled=app.config["PLUGINS"],
        disabled_builtins=app.config["DISABLED_BUILTINS"],
        extra=app.config.get("PLUGIN_OBJECTS"),
        core_version=__version__,
    )

    from crmcore import models  # noqa: F401  (the core tables join the metadata)

    db.init_app(app)
    _tune_sqlite(app)
    migrate.init_app(app, db, directory=CORE_MIGRATIONS, compare_type=True, render_as_batch=True)

    _collect_definitions(app, state)

    from crmcore.jobs import init_jobs

    init_jobs(app)

    from crmcore.api import init_api
    from crmcore.auth import init_auth
    from crmcore.web import init_web

    init_auth(app)
    init_api(app)
    init_web(app)
    _register_plugin_blueprints(app, host)
    _register_plugin_commands(app, host)
    _collect_menu_items(app, state)

    host.on_incident = lambda incident: _persist_incident(app, incident)
    app.jinja_env.globals["localize"] = localize
    host.notify_each("crm_app_ready", app=app)
    return app


def dump_json(value: Any) -> str:
    """JSON text of a column's value: non-string keys become strings, as the standard library does."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def load_json(text: Any) -> Any:
    """A column's value from its JSON text (SQLite hands a bare number back as a number)."""
    return text if isinstance(text, (int, float)) else orjson.loads(text)


def _configure_database(app: Flask) -> None:
    url = app.config.get("DATABASE_URL")
    if not url:
        os.makedirs(app.instance_path, exist_ok=True)
        url = "sqlite:///" + os.path.join(app.instance_path, "crm.sqlite")
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    # JSON columns (history snapshots, custom fields) are written by the thousand in imports: orjson
    # encodes them several times faster than the standard library.
    options: dict[str, Any] = {"json_serializer": dump_json, "json_deserializer": load_json}
    if url.startswith("postgresql"):
        options["pool_pre_ping"] = True
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", options)


def _tune_sqlite(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Checkpoint the write-ahead log every 40 MB rather than 4 MB: imports write index pages
            # many times over, and each checkpoint costs a sync (imports: 40% less time in commits).
            cursor.execute("PRAGMA wal_autocheckpoint=10000")
        # SQLite's default cache (2 MB) cannot hold the indexes of 100,000 contacts: each write of a
        # batch then re-reads index pages (batch creations: 2,000/s instead of 2,500/s).
        cursor.execute(f"PRAGMA cache_size=-{int(app.config['SQLITE_CACHE_MB']) * 1024}")
        cursor.close()

    @event.listens_for(engine, "savepoint")
    def _open_before_savepoint(connection: Any, _name: str) -> None:
        # pysqlite opens a transaction only before a write. A SAVEPOINT sent while none is open becomes
        # the transaction, and releasing it commits: the rows of a savepoint would survive a rollback
        # of the block around it (a failed import chunk). Open the transaction first. (SQLAlchemy's
        # other recipe, BEGIN for every transaction, would also make readers take snapshots that a
        # concurrent writer turns into "database is locked" errors.)
        if not connection.connection.dbapi_connection.in_transaction:
            connection.exec_driver_sql("BEGIN")


def _collect_definitions(app: Flask, state: CrmState) -> None:
    """Gather the once-per-application contributions: custom fields, channels, migrations."""
    host = state.host
    seen_fields: set[str] = set()
    for plugin, field_def in host.collect("register_custom_fields"):
        if field_def.key in seen_fields:
            host.incident(
                plugin, "register_custom_fields", ValueError(f"field {field_def.key!r} is already defined")
            )
            continue
        seen_fields.add(field_def.key)
        state.plugin_fields.append(_with_source(field_def, plugin))
    for plugin, channel in host.collect("register_channels"):
        if channel.key in state.channels:
            host.incident(
                plugin, "register_channels", ValueError(f"channel {channel.key!r} is already defined")
            )
            continue
        state.channels[channel.key] = channel
    for plugin, migrations in host.collect("register_migrations"):
        state.migrations.append((plugin, migrations))


def _with_source(field_def: Any, plugin: str) -> Any:
    from dataclasses import replace

    return replace(field_def, source=plugin)


def _register_plugin_blueprints(app: Flask, host: PluginHost) -> None:
    for plugin, blueprint in host.collect("register_blueprints"):
        try:
            app.register_blueprint(blueprint)
        except Exception as exc:
            host.mark_failed(plugin, f"blueprint {blueprint.name!r} could not be registered: {exc}", exc)


def _collect_menu_items(app: Flask, state: CrmState) -> None:
    from crmcore.web.menu import collect_menu_items

    state.menu_items = collect_menu_items(app, state.host)


def _register_plugin_commands(app: Flask, host: PluginHost) -> None:
    from crmcore.cli import CORE_COMMANDS

    for plugin, command in host.collect("register_commands"):
        if command.name in CORE_COMMANDS or command.name in app.cli.commands:
            host.incident(
                plugin, "register_commands", ValueError(f"command name {command.name!r} is already taken")
            )
            continue
        app.cli.add_command(command)


def _persist_incident(app: Flask, incident: Incident) -> None:
    from crmcore.models import PluginIncident

    # A separate connection so the incident survives a rollback of the request's transaction.
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(
            PluginIncident.__table__.insert().values(
                plugin=incident.plugin,
                hook=incident.hook,
                error=incident.error,
                # The same instant as the in-memory copy, so the report shows the incident once.
                at=datetime.fromisoformat(incident.at),
            )
        )

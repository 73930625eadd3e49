"""Pytest fixtures for crmcore and for plugin authors (registered through the ``pytest11`` entry point).

* ``crm_app_factory(**config)``: an application on the test database (migrated once per session);
* ``app``: one with every installed plugin, its app context pushed;
* ``client``, ``runner``: Flask test client and a runner for the ``crm`` command line;
* ``make_contact(**fields)``: create a contact through the service layer;
* ``register_plugin(obj, name)``: an application with a temporary plugin object registered;
* ``crm_fresh_database_url``: the URL of a new, empty database (for migration tests), dropped after.

The database is SQLite in a temporary folder, or ``CRM_TEST_DATABASE_URL`` (PostgreSQL) when set;
every table is emptied after each test. :func:`fresh_database` and :func:`schema_snapshot` help
testing migrations (``crm db upgrade`` run twice must leave the same snapshot).
"""

from __future__ import annotations

import os
import runpy
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text

_CORE_VERSIONS = Path(__file__).parent / "migrations" / "versions"


def _reset_postgresql(url: str) -> None:
    engine = create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def crm_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The test database: ``CRM_TEST_DATABASE_URL`` (emptied first) or a fresh SQLite file."""
    url = os.environ.get("CRM_TEST_DATABASE_URL")
    if url:
        _reset_postgresql(url)
        return url
    return "sqlite:///" + str(tmp_path_factory.mktemp("crmdb") / "test.sqlite")


def _base_config(url: str) -> dict[str, Any]:
    return {"DATABASE_URL": url, "TESTING": True, "SECRET_KEY": "test-secret", "PLUGINS": None}


@pytest.fixture(scope="session")
def crm_migrated(crm_database_url: str) -> list[str]:
    """Apply every migration (core and installed plugins) once; return the tables to empty between tests."""
    from crmcore import create_app
    from crmcore.extensions import db
    from crmcore.migrating import upgrade_all

    app = create_app(_base_config(crm_database_url))
    with app.app_context():
        upgrade_all()
        tables = [
            name for name in inspect(db.engine).get_table_names() if not name.endswith("alembic_version")
        ]
        db.engine.dispose()
    return tables


def _empty_database(app: Any, tables: list[str]) -> None:
    from crmcore.extensions import db

    defaults = runpy.run_path(str(_CORE_VERSIONS / "0002_default_lists.py"))
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
                )
            else:
                connection.execute(text("PRAGMA foreign_keys=OFF"))
                for table in tables:
                    connection.execute(text(f'DELETE FROM "{table}"'))
                connection.execute(text("PRAGMA foreign_keys=ON"))
            # Put back the rows the data migrations created (the default lists).
            upgrade = defaults["upgrade"]
            upgrade.__globals__["op"] = _BulkInsert(connection)  # run_path returns a copy of the globals
            upgrade()
        db.engine.dispose()


class _BulkInsert:
    """Just enough of alembic's ``op`` to replay the default-lists data migration."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def bulk_insert(self, table: Any, rows: list[dict[str, Any]]) -> None:
        self.connection.execute(table.insert(), rows)


@pytest.fixture
def crm_app_factory(crm_database_url: str, crm_migrated: list[str]) -> Iterator[Callable[..., Any]]:
    """Build applications on the test database; ``crm_app_factory(PLUGINS=["sms"], ...)``."""
    from crmcore import create_app

    apps: list[Any] = []

    def make(**config: Any) -> Any:
        app = create_app({**_base_config(crm_database_url), **config})
        apps.append(app)
        return app

    yield make
    if apps:
        _empty_database(apps[0], crm_migrated)
    for app in apps:
        from crmcore.extensions import db

        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(crm_app_factory: Callable[..., Any]) -> Iterator[Any]:
    application = crm_app_factory()
    with application.app_context():
        yield application


@pytest.fixture
def make_user(app: Any) -> Callable[..., Any]:
    """``make_user(email=..., is_admin=False, password=...)`` -> a User (password defaults to "password123")."""
    from crmcore.services.users import create_user

    counter = {"n": 0}

    def make(
        email: str | None = None, is_admin: bool = False, password: str = "password123", **kw: Any
    ) -> Any:
        counter["n"] += 1
        return create_user(email or f"user{counter['n']}@example.com", password, is_admin=is_admin, **kw)

    return make


def token_client(app: Any, user: Any) -> Any:
    """A test client of ``app`` sending a fresh API token of ``user`` (call it in an app context)."""
    from crmcore.services.users import create_token

    _row, token = create_token(user.id, "test")
    test_client = app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return test_client


@pytest.fixture
def api_client(app: Any) -> Callable[[Any], Any]:
    """``api_client(user)`` -> a test client sending that user's fresh API token."""
    return lambda user: token_client(app, user)


@pytest.fixture
def admin_user(make_user: Callable[..., Any]) -> Any:
    # No password: the client signs in with a token, and hashing one costs a tenth of a second per test.
    return make_user(email="admin@example.com", is_admin=True, name="Admin", password=None)


@pytest.fixture
def client(api_client: Callable[[Any], Any], admin_user: Any) -> Any:
    """A test client authenticated as an admin through an API token."""
    return api_client(admin_user)


@pytest.fixture
def anonymous_client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def runner(app: Any) -> Any:
    return app.test_cli_runner()


@pytest.fixture
def register_plugin(crm_app_factory: Callable[..., Any]) -> Callable[..., Any]:
    """``register_plugin(obj, name="temp", **config)`` -> an app with ``obj`` registered as a plugin."""

    def make(plugin: Any, name: str = "temp", **config: Any) -> Any:
        return crm_app_factory(PLUGIN_OBJECTS={name: plugin}, **config)

    return make


@pytest.fixture
def make_contact(app: Any) -> Callable[..., Any]:
    """Create a contact through the service layer: ``make_contact(last_name="Dupont")``."""
    from crmcore.services.contacts import create_contact

    def make(user: Any = None, **fields: Any) -> Any:
        data = dict(fields)
        data.setdefault("kind", "organization" if "name" in data and "last_name" not in data else "person")
        if data["kind"] == "person":
            data.setdefault("last_name", "Test")
        return create_contact(data, user, "api")

    return make


# -- migration testing ----------------------------------------------------------------------------


@contextmanager
def fresh_database(name: str, folder: str | os.PathLike[str]) -> Iterator[str]:
    """A new, empty database for the block: a SQLite file in ``folder``, or, when
    ``CRM_TEST_DATABASE_URL`` is set, a new PostgreSQL database on that server, dropped afterwards.

    Yields its URL (``sqlite:///...`` or ``postgresql://...``), usable as ``CRM_DATABASE_URL``.
    """
    base = os.environ.get("CRM_TEST_DATABASE_URL")
    if not base:
        yield "sqlite:///" + str(Path(folder) / f"{name}.sqlite")
        return
    from sqlalchemy.engine import make_url

    url = make_url(base)
    database = f"{url.database}_{name}_{uuid.uuid4().hex[:8]}"[:63]
    admin = create_engine(
        url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        try:
            yield url.set(database=database).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def crm_fresh_database_url(tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database (nothing migrated), dropped after the test."""
    with fresh_database("fresh", tmp_path) as url:
        yield url


def schema_snapshot(url: str) -> dict[str, Any]:
    """Everything a migration can change: each table's columns, keys, indexes and row count, and
    the content of every Alembic version table. Two equal snapshots mean nothing changed."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            tables: dict[str, Any] = {}
            versions: dict[str, list[str]] = {}
            for table in sorted(inspector.get_table_names()):
                quoted = connection.dialect.identifier_preparer.quote(table)
                if table.endswith("alembic_version"):
                    rows = connection.execute(text(f"SELECT version_num FROM {quoted}")).scalars()
                    versions[table] = sorted(rows)
                    continue
                tables[table] = {
                    "columns": {
                        column["name"]: [str(column["type"]), column["nullable"]]
                        for column in inspector.get_columns(table)
                    },
                    "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
                    "foreign_keys": sorted(
                        (fk["name"] or "", fk["constrained_columns"], fk["referred_table"])
                        for fk in inspector.get_foreign_keys(table)
                    ),
                    "indexes": sorted(
                        (ix["name"] or "", ix["column_names"], bool(ix["unique"]))
                        for ix in inspector.get_indexes(table)
                    ),
                    "unique": sorted(
                        (uq["name"] or "", uq["column_names"])
                        for uq in inspector.get_unique_constraints(table)
                    ),
                    "rows": connection.execute(text(f"SELECT count(*) FROM {quoted}")).scalar_one(),
                }
            return {"tables": tables, "versions": versions}
    finally:
        engine.dispose()


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1; ``.messages`` holds every email received, parsed.

    Use ``smtp_server.config`` as app config: ``crm_app_factory(**smtp_server.config)``.
    """
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    class Recorder:
        def __init__(self) -> None:
            self.messages: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
            message = message_from_bytes(envelope.content, policy=policy.default)
            message.envelope_to = list(envelope.rcpt_tos)
            self.messages.append(message)
            return "250 OK"

    import socket

    with socket.socket() as probe:  # aiosmtpd needs a concrete port to check its server started
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    handler.config = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "MAIL_FROM": "crm@example.com"}
    try:
        yield handler
    finally:
        controller.stop()

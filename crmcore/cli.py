"""The ``crm`` command line: a Flask CLI group bound to the app factory."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from flask import current_app
from flask.cli import FlaskGroup, ScriptInfo, routes_command, run_command, shell_command, with_appcontext

#: Names plugins may not take.
CORE_COMMANDS = frozenset({"run", "shell", "routes", "db", "plugins", "demo"})


def _factory(script_info: ScriptInfo | None = None) -> Any:
    from crmcore import create_app

    return create_app()


class CrmGroup(FlaskGroup):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            create_app=_factory, add_default_commands=False, load_dotenv=False, set_debug_flag=False, **kwargs
        )
        # Flask would also load every "flask.commands" entry point (Flask-Migrate's own ``db``
        # among them) over ours; crm owns its command names.
        self._loaded_plugin_commands = True
        for command in (run_command, shell_command, routes_command):
            self.add_command(command)


@click.group(cls=CrmGroup, help="crmcore: manage the CRM (database, plugins, data). Reads CRM_* variables.")
def main() -> None:
    pass


# -- db -------------------------------------------------------------------------------------------


@main.group(help="Database migrations: the core history, then one per enabled plugin.")
def db() -> None:
    pass


@db.command("upgrade", help="Apply pending migrations of the core then of every enabled plugin (idempotent).")
@with_appcontext
def db_upgrade() -> None:
    from crmcore.migrating import upgrade_all

    upgrade_all()
    click.echo("database is up to date")


@db.command("current", help="Show the current revision of every history.")
@with_appcontext
def db_current() -> None:
    import flask_migrate

    from crmcore.migrating import histories

    for name, directory, x_arg in histories():
        click.echo(f"[{name}]")
        flask_migrate.current(directory=directory, x_arg=x_arg)


@db.command("revision", help="Create a migration for the core or, with --plugin, for one plugin.")
@click.option("--plugin", default=None, help="Name of the plugin whose history gets the revision.")
@click.option("-m", "--message", required=True)
@click.option("--autogenerate/--empty", default=True, show_default=True)
@with_appcontext
def db_revision(plugin: str | None, message: str, autogenerate: bool) -> None:
    import flask_migrate

    from crmcore.app import CORE_MIGRATIONS
    from crmcore.migrating import plugin_history

    directory, x_arg = (CORE_MIGRATIONS, []) if plugin is None else plugin_history(plugin)
    if autogenerate:
        flask_migrate.migrate(directory=directory, message=message, x_arg=x_arg)
    else:
        flask_migrate.revision(directory=directory, message=message)


# -- plugins --------------------------------------------------------------------------------------


def plugins_report() -> list[dict[str, Any]]:
    """The plugin report of ``crm plugins --json`` and ``GET /api/v1/plugins``."""
    from crmcore.services.plugin_report import full_report

    return full_report()


@main.command("plugins", help="List plugins: version, status (loaded/disabled/failed), error, hooks.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def plugins_command(as_json: bool) -> None:
    report = plugins_report()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for item in report:
        kind = "built-in" if item["builtin"] else (item["distribution"] or "")
        click.echo(f"{item['name']:<16} {item['version'] or '-':<10} {item['status']:<9} {kind}")
        if item["error"]:
            click.echo(f"    error: {item['error']}")
        if item["hooks"]:
            click.echo(f"    hooks: {', '.join(item['hooks'])}")
        for incident in item["incidents"][-3:]:
            click.echo(f"    incident {incident['at']} {incident['hook']}: {incident['error']}")


# -- demo -----------------------------------------------------------------------------------------


@main.command("demo", help="Load demo data (only into an empty database) and print the demo login.")
@with_appcontext
def demo_command() -> None:
    from crmcore.demo import load_demo

    created, login = load_demo(current_app)
    if created:
        click.echo(f"demo data loaded: {created} contacts")
    else:
        click.echo("database already holds contacts: demo data not loaded")
    if login:
        click.echo(f"demo login: {login[0]} / password: {login[1]}")


def run() -> None:  # pragma: no cover - console entry for ``python -m crmcore``
    sys.exit(main())

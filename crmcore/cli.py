"""The ``crm`` command line: a Flask CLI group bound to the app factory."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from flask import current_app
from flask.cli import FlaskGroup, ScriptInfo, routes_command, run_command, shell_command, with_appcontext

#: Names plugins may not take.
CORE_COMMANDS = frozenset({"run", "shell", "routes", "db", "plugins", "demo", "users", "tokens"})


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


# -- users and tokens -----------------------------------------------------------------------------


@main.group(help="Users who sign in to the web interface and the API.")
def users() -> None:
    pass


@users.command(
    "create", help="Create a user. The password is read from standard input with --password-stdin."
)
@click.option("--email", required=True)
@click.option("--name", default="")
@click.option("--admin", is_flag=True, help="Give the admin role.")
@click.option("--language", type=click.Choice(["en", "fr"]), default=None)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (first line).")
@with_appcontext
def users_create(email: str, name: str, admin: bool, language: str | None, password_stdin: bool) -> None:
    from crmcore.errors import CrmError
    from crmcore.services.users import create_user

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    try:
        user = create_user(email, password, is_admin=admin, name=name, language=language)
    except CrmError as exc:
        raise click.ClickException(_describe(exc)) from None
    click.echo(f"created user {user.id} {user.email}{' (admin)' if user.is_admin else ''}")


@users.command("list", help="List users.")
@with_appcontext
def users_list() -> None:
    from crmcore.services.users import list_users

    for user in list_users():
        role = "admin" if user.is_admin else "user"
        click.echo(f"{user.id:>5}  {user.email:<40} {role:<6} {'active' if user.active else 'inactive'}")


@main.group(help="API tokens (sent as 'Authorization: Bearer <token>').")
def tokens() -> None:
    pass


@tokens.command("create", help="Create an API token for a user; the token is printed on the last line.")
@click.option("--email", required=True)
@click.option("--name", default="cli")
@with_appcontext
def tokens_create(email: str, name: str) -> None:
    from crmcore.services.users import create_token, find_user

    user = find_user(email)
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    row, token = create_token(user.id, name)
    click.echo(f"token {row.id} for {user.email} (shown once, store it now):")
    click.echo(token)


@tokens.command("list", help="List API tokens (never the secret itself).")
@click.option("--email", default=None, help="Only this user's tokens.")
@with_appcontext
def tokens_list(email: str | None) -> None:
    from crmcore.services.users import find_user, list_tokens

    user_id = None
    if email:
        user = find_user(email)
        if user is None:
            raise click.ClickException(f"no user with email {email}")
        user_id = user.id
    for row in list_tokens(user_id):
        state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
        used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never used"
        click.echo(f"{row.id:>5}  {row.user.email:<40} {row.prefix}…  {row.name:<20} {state:<18} {used}")


@tokens.command("revoke", help="Revoke an API token by id.")
@click.argument("token_id", type=int)
@with_appcontext
def tokens_revoke(token_id: int) -> None:
    from crmcore.errors import CrmError
    from crmcore.services.users import revoke_token

    try:
        revoke_token(token_id)
    except CrmError as exc:
        raise click.ClickException(_describe(exc)) from None
    click.echo(f"token {token_id} revoked")


def _describe(exc: Any) -> str:
    errors = getattr(exc, "errors", None)
    if errors:
        return "; ".join(f"{field}: {', '.join(messages)}" for field, messages in errors.items())
    return str(exc.message)


def run() -> None:  # pragma: no cover - console entry for ``python -m crmcore``
    sys.exit(main())

"""The ``crm`` command line: a Flask CLI group bound to the app factory."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from flask import current_app
from flask.cli import FlaskGroup, ScriptInfo, routes_command, run_command, shell_command, with_appcontext

#: Names plugins may not take.
CORE_COMMANDS = frozenset(
    {"run", "shell", "routes", "db", "plugins", "demo", "users", "tokens", "worker", "messages"}
    | {"duplicates", "merge"}
    | {"import", "export"}
)


def _factory(script_info: ScriptInfo | None = None) -> Any:
    from crmcore import create_app
    from crmcore.config import ConfigError
    from crmcore.errors import PluginError

    try:
        return create_app()
    except (ConfigError, PluginError) as exc:
        # A configuration mistake deserves one clear line, not a traceback.
        raise click.ClickException(str(exc)) from None


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
    from alembic import command

    from crmcore.migrating import histories

    migrate = current_app.extensions["migrate"].migrate
    for name, directory, x_arg in histories():
        click.echo(f"[{name}]")
        command.current(migrate.get_config(directory, x_arg=x_arg))


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
    else:
        click.echo(
            "users already exist; the demo login was printed when it was created. To set a new password:\n"
            "  echo 'new-password' | crm users password --email admin@example.com"
        )


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


@users.command("password", help="Set a user's password, read from standard input (first line).")
@click.option("--email", required=True)
@with_appcontext
def users_password(email: str) -> None:
    from crmcore.errors import CrmError
    from crmcore.services.users import find_user, set_password

    user = find_user(email)
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    try:
        set_password(user.id, sys.stdin.readline().rstrip("\r\n"))
    except CrmError as exc:
        raise click.ClickException(_describe(exc)) from None
    click.echo(f"password of {user.email} changed")


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


# -- jobs and messages ----------------------------------------------------------------------------


@main.command("worker", help="Run the background job worker (needs CRM_CELERY_BROKER_URL, e.g. redis://...).")
@click.option("--concurrency", "-c", type=int, default=None, help="Worker processes (default: CPU count).")
@click.option("--beat", is_flag=True, help="Also run the periodic tasks (re-queue stuck messages).")
@click.option("--loglevel", default="INFO", show_default=True)
@with_appcontext
def worker_command(concurrency: int | None, beat: bool, loglevel: str) -> None:
    from crmcore.jobs import celery_app, is_eager

    if is_eager():
        raise click.ClickException(
            "no broker configured: set CRM_CELERY_BROKER_URL (jobs run in-process without it)"
        )
    argv = ["worker", f"--loglevel={loglevel}"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if beat:
        argv.append("--beat")
    celery_app().worker_main(argv)


@main.group(help="The message log and its delivery queue.")
def messages() -> None:
    pass


@messages.command("requeue", help="Hand again to the job queue every queued message no worker holds.")
@click.option(
    "--min-age", type=int, default=60, show_default=True, help="Only messages at least this old (seconds)."
)
@with_appcontext
def messages_requeue(min_age: int) -> None:
    from crmcore.services.messaging import requeue_pending

    click.echo(f"{requeue_pending(min_age)} message(s) queued")


# -- duplicates and merge ---------------------------------------------------------------------------


@main.command(
    "duplicates",
    help="List pairs of contacts that look like the same person or organization (pairs marked "
    "'not a duplicate' left out); mark a pair with --dismiss A B, unmark it with --undismiss A B.",
)
@click.option("--json", "as_json", is_flag=True, help='[{"a": id, "b": id, "score": s, "reasons": [...]}]')
@click.option("--threshold", type=click.FloatRange(0, 1), default=None, help="Minimum score.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many pairs.")
@click.option(
    "--dismiss",
    nargs=2,
    default=None,
    metavar="A B",
    help="Mark contacts A and B (ids or numbers) not a duplicate.",
)
@click.option(
    "--undismiss", nargs=2, default=None, metavar="A B", help="Remove the 'not a duplicate' marker."
)
@click.option("--dismissed", "list_dismissed", is_flag=True, help="List the pairs marked 'not a duplicate'.")
@with_appcontext
def duplicates_command(
    as_json: bool,
    threshold: float | None,
    limit: int | None,
    dismiss: tuple[str, str] | None,
    undismiss: tuple[str, str] | None,
    list_dismissed: bool,
) -> None:
    from crmcore.errors import CrmError, ValidationError
    from crmcore.services import duplicates as svc
    from crmcore.services.duplicates import find_duplicates

    if sum(1 for chosen in (dismiss, undismiss, list_dismissed) if chosen) > 1:
        raise click.UsageError("choose one of --dismiss, --undismiss and --dismissed")
    try:
        if dismiss:
            row, created = svc.dismiss_pair(_contact_ref(dismiss[0]), _contact_ref(dismiss[1]), None)
            if as_json:
                click.echo(json.dumps(svc.dismissal_to_dict(row)))
            else:
                done = "marked" if created else "already marked"
                click.echo(f"contacts {row.contact_a_id} and {row.contact_b_id} {done} 'not a duplicate'")
            return
        if undismiss:
            a, b = _contact_ref(undismiss[0]), _contact_ref(undismiss[1])
            svc.undismiss(a, b, None)
            click.echo(f"contacts {a} and {b} may be proposed as duplicates again")
            return
    except ValidationError as exc:
        details = "; ".join(f"{field}: {', '.join(why)}" for field, why in exc.errors.items())
        raise click.ClickException(f"{exc.message}: {details}") from None
    except CrmError as exc:
        field = exc.details.get("field")
        raise click.ClickException(f"{field}: {exc.message}" if field else exc.message) from None
    if list_dismissed:
        rows = svc.list_dismissed(None, limit)
        if as_json:
            click.echo(json.dumps([svc.dismissal_to_dict(row) for row in rows]))
            return
        for row in rows:
            click.echo(
                f"{row.contact_a_id:>8} {row.contact_b_id:>8}  {row.created_at.isoformat(timespec='seconds')}"
            )
        click.echo(f"{len(rows)} pair(s) marked 'not a duplicate'", err=True)
        return

    pairs = find_duplicates(None, threshold, limit)
    if as_json:
        click.echo(json.dumps([pair.to_dict() for pair in pairs], ensure_ascii=False))
        return
    for pair in pairs:
        click.echo(f"{pair.a:>8} {pair.b:>8}  {pair.score:.3f}  {'; '.join(pair.reasons)}")
    click.echo(f"{len(pairs)} pair(s)", err=True)


def _contact_ref(value: str) -> int:
    """A contact id, or a contact number such as C-000042."""
    from sqlalchemy import select

    from crmcore.extensions import db
    from crmcore.models import Contact

    if value.isdigit():
        return int(value)
    found = db.session.scalar(select(Contact.id).where(Contact.number == value.strip().upper()))
    if found is None:
        raise click.BadParameter(f"no contact has the number {value!r}")
    return found


@main.command("merge", help="Merge contacts into ORIGINAL (ids or numbers), or undo a merge with --undo ID.")
@click.argument("original", required=False)
@click.argument("others", nargs=-1)
@click.option("--field", "choices", multiple=True, metavar="FIELD=ID", help="Whose value wins: birthday=12.")
@click.option("--undo", "undo_id", type=click.IntRange(min=1), default=None, help="Undo this merge.")
@click.option("--json", "as_json", is_flag=True, help="Print the merge record as JSON.")
@with_appcontext
def merge_command(
    original: str | None,
    others: tuple[str, ...],
    choices: tuple[str, ...],
    undo_id: int | None,
    as_json: bool,
) -> None:
    from crmcore.errors import CrmError, ValidationError
    from crmcore.services import merge as svc

    try:
        if undo_id is not None:
            if original or others or choices:
                raise click.UsageError("--undo takes only the merge id")
            record = svc.undo_merge(undo_id, None, "cli")
            back = ", ".join(map(str, record.merged_ids))
            message = f"merge {record.id} undone; back: contact(s) {back}"
        else:
            if not original or not others:
                raise click.UsageError("name the original contact and at least one contact to merge into it")
            fields: dict[str, int] = {}
            for choice in choices:
                name, _, value = choice.partition("=")
                if not name or not value:
                    raise click.BadParameter(f"{choice!r}: write FIELD=ID", param_hint="--field")
                fields[name.strip()] = _contact_ref(value.strip())
            record = svc.merge_contacts(
                _contact_ref(original), [_contact_ref(o) for o in others], fields, None, "cli"
            )
            message = (
                f"merged {', '.join(map(str, record.merged_ids))} into {record.original_id} (merge {record.id}); "
                f"undo with: crm merge --undo {record.id}"
            )
    except ValidationError as exc:
        details = "; ".join(f"{field}: {', '.join(why)}" for field, why in exc.errors.items())
        raise click.ClickException(f"{exc.message}: {details}") from None
    except CrmError as exc:
        raise click.ClickException(exc.message) from None
    if as_json:
        click.echo(json.dumps(svc.merge_to_dict(record), ensure_ascii=False))
    else:
        click.echo(message)


# -- import and export ----------------------------------------------------------------------------

from crmcore.interchange.commands import export_command, import_command  # noqa: E402

main.add_command(import_command)
main.add_command(export_command)


def run() -> None:  # pragma: no cover - console entry for ``python -m crmcore``
    sys.exit(main())

"""The key proof of the plugin contract: a third-party distribution, built and installed by pip.

The test writes two real distributions into a temporary folder:

* ``crm-oot`` (package ``crm_oot``, entry point ``oot = "crm_oot.plugin"``) imports only
  ``crmcore.plugin_api`` and contributes a tab (rendered from its own template), an action, a
  custom field, a channel, a blueprint (route and static file), a CLI command, a validation rule,
  an event handler and its own Alembic history (table ``oot_items``, version table
  ``oot_alembic_version``);
* ``crm-broken``, whose plugin module raises at import.

Both are built and installed with pip (``--no-deps --no-build-isolation``) into a private
``--target`` folder that only the subprocesses of this test see (through ``PYTHONPATH``): the
shared virtual environment never holds them, so other test runs on the machine are not
affected and nothing is left behind if the run is killed. Everything then runs in subprocesses
(stevedore caches entry points per process) against a fresh database: SQLite in a temporary
folder, or a new PostgreSQL database (dropped afterwards) when ``CRM_TEST_DATABASE_URL`` is set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crmcore.testing import fresh_database, schema_snapshot

pytestmark = pytest.mark.slow

CRM = str(Path(sys.executable).with_name("crm"))
TIMEOUT = 120

OOT_FILES = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "crm-oot"
        version = "0.3.1"
        description = "An out-of-tree crmcore plugin, built by the test suite."
        requires-python = ">=3.11"
        dependencies = ["crmcore"]

        [project.entry-points."crm.plugins"]
        oot = "crm_oot.plugin"

        [tool.setuptools.packages.find]
        include = ["crm_oot*"]

        [tool.setuptools.package-data]
        crm_oot = ["templates/crm_oot/*.html", "static/*", "migrations/*.py", "migrations/versions/*.py"]
    """,
    "crm_oot/__init__.py": '''
        """crm-oot: a plugin living outside the crmcore source tree."""
    ''',
    "crm_oot/plugin.py": '''
        """Hook implementations only; the code they call lives in views.py and models.py."""

        from pathlib import Path

        from crmcore.plugin_api import (
            Action,
            Channel,
            FieldDef,
            Migrations,
            Problem,
            Tab,
            db,
            hookimpl,
        )

        from crm_oot import views
        from crm_oot.models import OotItem


        @hookimpl
        def crm_app_ready(app):
            app.config.setdefault("OOT_READY", True)


        @hookimpl
        def register_custom_fields():
            return [FieldDef(key="oot_level", label={"en": "OOT level", "fr": "Niveau OOT"}, type="integer")]


        @hookimpl
        def register_channels():
            return [Channel(key="oot_pigeon", label="Pigeon", target="phone", consent="sms", send=views.send)]


        @hookimpl
        def register_blueprints():
            return [views.blueprint]


        @hookimpl
        def register_commands():
            return [views.count_command]


        @hookimpl
        def register_migrations():
            return Migrations(directory=str(Path(__file__).with_name("migrations")), prefix="oot")


        @hookimpl
        def contact_tabs(contact):
            return [Tab(key="oot_items", label={"en": "OOT items", "fr": "Objets OOT"}, render=views.render_tab, order=50)]


        @hookimpl
        def contact_actions(contact):
            return [Action(key="oot_ping", label="Ping", url=f"/plugins/oot/contacts/{contact.id}/ping", method="POST")]


        @hookimpl
        def contact_validate(data):
            level = (data.get("custom") or {}).get("oot_level")
            if level is not None and level > 10:
                return [Problem("must be 10 or less", field="custom.oot_level")]
            return None


        @hookimpl
        def contact_created(contact, source):
            db.session.add(OotItem(contact_id=contact.id, label=f"welcome ({source})"))
    ''',
    "crm_oot/models.py": """
        from crmcore.plugin_api import UTCDateTime, db, utcnow


        class OotItem(db.Model):
            __tablename__ = "oot_items"

            id = db.Column(db.Integer, primary_key=True)
            contact_id = db.Column(
                db.Integer, db.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False, index=True
            )
            label = db.Column(db.String(200), nullable=False)
            created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    """,
    "crm_oot/views.py": """
        import click
        from flask import Blueprint, jsonify, render_template
        from sqlalchemy import func, select

        from crmcore.plugin_api import SendResult, db, get_contact_for, transaction

        from crm_oot.models import OotItem

        blueprint = Blueprint(
            "crm_oot", __name__, url_prefix="/plugins/oot", template_folder="templates", static_folder="static"
        )


        def _items(contact_id):
            return db.session.scalars(select(OotItem).where(OotItem.contact_id == contact_id).order_by(OotItem.id)).all()


        @blueprint.get("/contacts/<id:contact_id>/items")
        def items(contact_id):
            contact = get_contact_for(contact_id)
            return jsonify(contact=contact.id, items=[item.label for item in _items(contact.id)])


        @blueprint.post("/contacts/<id:contact_id>/ping")
        def ping(contact_id):
            contact = get_contact_for(contact_id, "write")
            with transaction():
                db.session.add(OotItem(contact_id=contact.id, label="ping"))
            return jsonify(ok=True), 201


        def render_tab(contact):
            return render_template("crm_oot/tab.html", contact=contact, items=_items(contact.id))


        def send(message):
            return SendResult(provider_id=f"pigeon-{message.id}", status="sent")


        @click.command("oot-count", help="Count the OOT items.")
        def count_command():
            click.echo(f"oot items: {db.session.scalar(select(func.count()).select_from(OotItem))}")
    """,
    "crm_oot/templates/crm_oot/tab.html": """
        <ul class="oot-items" data-contact="{{ contact.id }}">
        {%- for item in items %}<li>{{ item.label }}</li>{% endfor -%}
        </ul>
    """,
    "crm_oot/static/oot.css": """
        .oot-items { color: teal; }
    """,
    "crm_oot/migrations/env.py": """
        from crmcore.plugin_api import run_migrations

        run_migrations()
    """,
    "crm_oot/migrations/versions/oot_0001_items.py": '''
        """oot items"""

        import sqlalchemy as sa
        from alembic import op

        revision = "oot_0001"
        down_revision = None
        branch_labels = None
        depends_on = None


        def upgrade():
            op.create_table(
                "oot_items",
                sa.Column("id", sa.Integer(), nullable=False),
                sa.Column("contact_id", sa.Integer(), nullable=False),
                sa.Column("label", sa.String(length=200), nullable=False),
                sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
                sa.ForeignKeyConstraint(
                    ["contact_id"], ["contacts.id"], name=op.f("fk_oot_items_contact_id_contacts"), ondelete="CASCADE"
                ),
                sa.PrimaryKeyConstraint("id", name=op.f("pk_oot_items")),
            )
            op.create_index(op.f("ix_oot_items_contact_id"), "oot_items", ["contact_id"], unique=False)


        def downgrade():
            op.drop_index(op.f("ix_oot_items_contact_id"), table_name="oot_items")
            op.drop_table("oot_items")
    ''',
}

BROKEN_FILES = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "crm-broken"
        version = "0.0.1"
        requires-python = ">=3.11"

        [project.entry-points."crm.plugins"]
        broken = "crm_broken.plugin"

        [tool.setuptools.packages.find]
        include = ["crm_broken*"]
    """,
    "crm_broken/__init__.py": "",
    "crm_broken/plugin.py": """
        raise RuntimeError("crm_broken cannot start: no licence key")
    """,
}

# What the script below checks, in a process that sees the installed plugins.
APP_SCRIPT = """
import json

from crmcore import create_app
from crmcore.cli import main

app = create_app()
with app.app_context():
    from crmcore.services.users import create_token, create_user

    admin = create_user("oot@example.com", "password123", is_admin=True)
    _row, token = create_token(admin.id, "oot test")
client = app.test_client()
client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
facts = {"ready": app.config.get("OOT_READY")}

created = client.post("/api/v1/contacts", json={"last_name": "Oot", "custom": {"oot_level": 3}})
facts["create"] = [created.status_code, created.get_json()]
contact_id = created.get_json().get("id")
refused = client.post("/api/v1/contacts", json={"last_name": "Too", "custom": {"oot_level": 11}})
facts["refused"] = [refused.status_code, refused.get_json()]
unknown = client.post("/api/v1/contacts", json={"last_name": "Bad", "custom": {"oot_nope": 1}})
facts["unknown_field"] = [unknown.status_code, unknown.get_json()]

facts["fields"] = client.get("/api/v1/custom-fields").get_json()
facts["tabs"] = client.get(f"/api/v1/contacts/{contact_id}/tabs").get_json()
facts["actions"] = client.get(f"/api/v1/contacts/{contact_id}/actions").get_json()
facts["channels"] = client.get("/api/v1/plugins/channels").get_json()
ping = client.post(f"/plugins/oot/contacts/{contact_id}/ping")
facts["ping"] = [ping.status_code, ping.get_json()]
items = client.get(f"/plugins/oot/contacts/{contact_id}/items")
facts["items"] = [items.status_code, items.get_json()]
anonymous = app.test_client().get(f"/plugins/oot/contacts/{contact_id}/items")
facts["items_anonymous"] = [anonymous.status_code, anonymous.headers.get("Location")]
missing = client.get("/plugins/oot/contacts/999999/items")
facts["items_missing"] = [missing.status_code, missing.get_json()]
css = client.get("/plugins/oot/static/oot.css")
facts["static"] = [css.status_code, css.get_data(as_text=True)]
css.close()
result = app.test_cli_runner().invoke(main, ["oot-count"])
facts["command"] = [result.exit_code, result.output]

# Models against migrations, per history: each compares only its own tables.
from alembic import command
from alembic.util.exc import AutogenerateDiffsDetected, CommandError

from crmcore.migrating import histories

facts["histories"] = {}
with app.app_context():
    for name, directory, x_arg in histories():
        try:
            command.check(app.extensions["migrate"].migrate.get_config(directory, x_arg=x_arg))
            facts["histories"][name] = None
        except (AutogenerateDiffsDetected, CommandError) as exc:
            facts["histories"][name] = str(exc)
print("FACTS " + json.dumps(facts))
"""


def _write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip("\n"))
    return root


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Build and install crm-oot and crm-broken with pip into a folder only our subprocesses see."""
    root = tmp_path_factory.mktemp("oot")
    site = root / "site"
    sources = [_write_tree(root / "crm-oot", OOT_FILES), _write_tree(root / "crm-broken", BROKEN_FILES)]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
            + ["--no-build-isolation", "--no-index", "--target", str(site), *map(str, sources)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert result.returncode == 0, f"pip could not install the test plugins:\n{result.stderr}"
        assert (site / "crm_oot" / "migrations" / "versions" / "oot_0001_items.py").is_file()
        assert (site / "crm_oot" / "templates" / "crm_oot" / "tab.html").is_file()
        yield site
    finally:
        shutil.rmtree(site, ignore_errors=True)  # the "uninstall": nothing else ever saw this folder


@pytest.fixture(scope="module")
def oot_env(plugin_site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment of the subprocesses: the plugins on the path, a fresh database, default settings."""
    work = tmp_path_factory.mktemp("oot-run")
    with fresh_database("oot", work) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_site), os.environ.get("PYTHONPATH")]))
        env["CRM_DATABASE_URL"] = url
        env["CRM_SECRET_KEY"] = "oot-test"
        env["XDG_CACHE_HOME"] = str(work / "cache")  # stevedore's entry-point cache stays in the temp folder
        env["OOT_WORKDIR"] = str(work)
        yield env


@pytest.fixture(scope="module")
def first_upgrade(oot_env: dict[str, str]) -> dict[str, Any]:
    """``crm db upgrade`` on the fresh database; returns the schema it left."""
    _run([CRM, "db", "upgrade"], oot_env, Path(oot_env["OOT_WORKDIR"]))
    return schema_snapshot(oot_env["CRM_DATABASE_URL"])


def test_db_upgrade_applies_the_plugin_history_once(oot_env: dict[str, str], first_upgrade: dict[str, Any]):
    assert "oot_items" in first_upgrade["tables"]
    assert set(first_upgrade["tables"]["oot_items"]["columns"]) == {"id", "contact_id", "label", "created_at"}
    assert first_upgrade["versions"]["oot_alembic_version"] == ["oot_0001"]
    assert "alembic_version" in first_upgrade["versions"]
    # The plugin's revision never lands in the core's version table.
    assert "oot_0001" not in first_upgrade["versions"]["alembic_version"]

    second = _run([CRM, "db", "upgrade"], oot_env, Path(oot_env["OOT_WORKDIR"]))
    assert "database is up to date" in second.stdout
    assert schema_snapshot(oot_env["CRM_DATABASE_URL"]) == first_upgrade


def test_crm_plugins_reports_loaded_and_failed(oot_env: dict[str, str], first_upgrade: dict[str, Any]):
    result = _run([CRM, "plugins", "--json"], oot_env, Path(oot_env["OOT_WORKDIR"]))
    report = {item["name"]: item for item in json.loads(result.stdout)}

    oot = report["oot"]
    assert oot["status"] == "loaded", oot
    assert oot["version"] == "0.3.1"
    assert oot["distribution"] == "crm-oot"
    assert oot["builtin"] is False
    assert oot["error"] is None
    assert oot["hooks"] == [
        "contact_actions",
        "contact_created",
        "contact_tabs",
        "contact_validate",
        "crm_app_ready",
        "register_blueprints",
        "register_channels",
        "register_commands",
        "register_custom_fields",
        "register_migrations",
    ]
    assert oot["incidents"] == []

    broken = report["broken"]
    assert broken["status"] == "failed"
    assert broken["distribution"] == "crm-broken"
    assert broken["version"] == "0.0.1"
    assert "import failed" in broken["error"]
    assert "RuntimeError: crm_broken cannot start: no licence key" in broken["error"]
    assert broken["hooks"] == []
    # The broken plugin is logged on stderr with its traceback, and the app still started.
    assert "crm_broken cannot start" in result.stderr
    assert report["history"]["status"] == "loaded"


def test_plugin_contributions_work_in_the_app(oot_env: dict[str, str], first_upgrade: dict[str, Any]):
    work = Path(oot_env["OOT_WORKDIR"])
    script = work / "check_app.py"
    script.write_text(APP_SCRIPT)
    result = _run([sys.executable, str(script)], oot_env, work)
    facts = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("FACTS "))[6:])

    assert facts["ready"] is True

    status, body = facts["create"]
    assert status == 201, body
    assert body["custom"] == {"oot_level": 3}
    status, body = facts["refused"]
    assert status == 422, body
    assert body["errors"] == {"custom.oot_level": ["must be 10 or less"]}
    status, body = facts["unknown_field"]
    assert status == 422 and "custom.oot_nope" in body["errors"], body

    field = next(f for f in facts["fields"] if f["key"] == "oot_level")
    assert field["source"] == "oot" and field["type"] == "integer"

    tab = next(t for t in facts["tabs"] if t["key"] == "oot_items")
    assert tab["plugin"] == "oot" and tab["label"] == "OOT items" and tab["error"] is None
    # Rendered from the plugin's own template; contact_created wrote the first item.
    assert '<ul class="oot-items"' in tab["html"]
    assert "<li>welcome (api)</li>" in tab["html"]

    action = next(a for a in facts["actions"] if a["key"] == "oot_ping")
    assert action["plugin"] == "oot" and action["method"] == "POST"
    assert action["url"] == f"/plugins/oot/contacts/{body_id(facts)}/ping"

    channel = next(c for c in facts["channels"] if c["key"] == "oot_pigeon")
    assert channel == {
        "key": "oot_pigeon",
        "label": "Pigeon",
        "target": "phone",
        "consent": "sms",
        "has_subject": False,
        "max_length": None,
    }

    assert facts["ping"] == [201, {"ok": True}]
    assert facts["items"] == [200, {"contact": body_id(facts), "items": ["welcome (api)", "ping"]}]
    status, body = facts["items_missing"]
    assert status == 404, body
    assert facts["static"][0] == 200 and "teal" in facts["static"][1]
    # Plugin routes are protected like the core's: an anonymous visitor is sent to sign in.
    status, location = facts["items_anonymous"]
    assert status == 302 and "/login" in location, facts["items_anonymous"]
    # The plugin's command, run through the ``crm`` command group.
    assert facts["command"] == [0, "oot items: 2\n"]

    # With the plugin loaded, the core's history ignores oot_items and the plugin's ignores core tables.
    assert {"core", "oot"} <= set(facts["histories"])
    assert {name: diff for name, diff in facts["histories"].items() if diff} == {}


def body_id(facts: dict[str, Any]) -> int:
    return facts["create"][1]["id"]

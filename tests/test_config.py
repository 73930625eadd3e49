"""Configuration: defaults < TOML file (``CRM_CONFIG`` or a path argument) < ``CRM_*`` variables <
the mapping given to ``create_app``; ``CRM_PLUGINS`` parsing; clear errors; nothing built at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crmcore import create_app
from crmcore.config import DEFAULTS, ConfigError, build


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``CRM_*`` variable of the calling shell leaks into these tests (the test database URL is not config)."""
    for name in list(os.environ):
        if name.startswith("CRM_") and name != "CRM_TEST_DATABASE_URL":
            monkeypatch.delenv(name)


def _sqlite(tmp_path: Path) -> str:
    return "sqlite:///" + str(tmp_path / "config.sqlite")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _dispose(app) -> None:
    from crmcore.extensions import db

    with app.app_context():
        db.engine.dispose()


def test_each_layer_overrides_the_one_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config_file = _write(
        tmp_path / "crm.toml",
        f"""
database_url = "{_sqlite(tmp_path)}"
DEFAULT_COUNTRY = "BE"
PAGE_SIZE = 20
SECRET_KEY = "from-file"
PLUGINS = []
""",
    )
    monkeypatch.setenv("CRM_CONFIG", str(config_file))
    monkeypatch.setenv("CRM_PAGE_SIZE", "30")
    monkeypatch.setenv("CRM_SECRET_KEY", "from-env")

    app = create_app({"SECRET_KEY": "from-mapping"})
    try:
        assert app.config["MAX_PAGE_SIZE"] == DEFAULTS["MAX_PAGE_SIZE"]  # default only
        assert app.config["DEFAULT_COUNTRY"] == "BE"  # file over default (keys are case-insensitive)
        assert app.config["DATABASE_URL"] == _sqlite(tmp_path)
        assert app.config["PAGE_SIZE"] == 30  # environment over file, coerced to the default's type
        assert app.config["SECRET_KEY"] == "from-mapping"  # the explicit mapping wins over everything
        assert app.config["PLUGINS"] == []
    finally:
        _dispose(app)


def test_a_path_argument_is_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    chosen = _write(
        tmp_path / "chosen.toml", f'DATABASE_URL = "{_sqlite(tmp_path)}"\nDEFAULT_COUNTRY = "CH"\n'
    )
    ignored = _write(tmp_path / "ignored.toml", 'DEFAULT_COUNTRY = "DE"\nPAGE_SIZE = 7\n')
    monkeypatch.setenv("CRM_CONFIG", str(ignored))
    monkeypatch.setenv("CRM_DEFAULT_LANGUAGE", "en")
    monkeypatch.setenv("CRM_PLUGINS", "")

    app = create_app(chosen)
    try:
        assert app.config["DEFAULT_COUNTRY"] == "CH"  # from the path argument, CRM_CONFIG not read
        assert app.config["PAGE_SIZE"] == DEFAULTS["PAGE_SIZE"]
        assert app.config["DEFAULT_LANGUAGE"] == "en"  # the environment still applies over the file
    finally:
        _dispose(app)
    assert build(str(chosen), environ={})["DEFAULT_COUNTRY"] == "CH"


def test_without_file_or_environment_the_defaults_apply():
    config = build(environ={})
    for key, value in DEFAULTS.items():
        assert config[key] == value
    assert config["PLUGINS"] is None  # None: every installed plugin is enabled


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", []),
        ("sms", ["sms"]),
        (" sms , geolocation ,", ["sms", "geolocation"]),
        (",,", []),
    ],
)
def test_crm_plugins_is_a_comma_list(raw: str, expected: list[str]):
    assert build(environ={"CRM_PLUGINS": raw})["PLUGINS"] == expected


def test_plugins_as_a_string_in_the_config_file(tmp_path: Path):
    config_file = _write(tmp_path / "crm.toml", 'PLUGINS = "sms, marketing"\n')
    assert build(config_file, environ={})["PLUGINS"] == ["sms", "marketing"]


def test_empty_crm_plugins_enables_no_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CRM_PLUGINS", "")
    app = create_app({"DATABASE_URL": _sqlite(tmp_path)})
    try:
        records = app.extensions["crm"].host.records
        third_party = {name: r.status for name, r in records.items() if not r.builtin}
        assert third_party, "no installed plugin to check"
        assert set(third_party.values()) == {"disabled"}
        assert all(r.status == "loaded" for r in records.values() if r.builtin)
    finally:
        _dispose(app)


def test_unset_crm_plugins_enables_every_installed_plugin(tmp_path: Path):
    app = create_app({"DATABASE_URL": _sqlite(tmp_path)})
    try:
        records = app.extensions["crm"].host.records
        assert records["sms"].status == "loaded"
        assert records["geolocation"].status == "loaded"
    finally:
        _dispose(app)


@pytest.mark.parametrize("raw", ["1", "true", "Yes", "on"])
def test_boolean_true_spellings(raw: str):
    assert build(environ={"CRM_STRICT_PLUGINS": raw})["STRICT_PLUGINS"] is True


@pytest.mark.parametrize("raw", ["0", "false", "No", "off", ""])
def test_boolean_false_spellings(raw: str):
    assert build(environ={"CRM_STRICT_PLUGINS": raw})["STRICT_PLUGINS"] is False


def test_a_bad_boolean_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CRM_STRICT_PLUGINS", "maybe")
    with pytest.raises(ConfigError) as excinfo:
        create_app({"DATABASE_URL": _sqlite(tmp_path)})
    message = str(excinfo.value)
    assert "CRM_STRICT_PLUGINS" in message
    assert "'maybe'" in message
    assert "boolean" in message


def test_a_bad_integer_names_the_variable():
    with pytest.raises(ConfigError, match=r"CRM_PAGE_SIZE: expected an integer, got 'lots'"):
        build(environ={"CRM_PAGE_SIZE": "lots"})


def test_a_missing_config_file_is_named(tmp_path: Path):
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError, match="config file not found") as excinfo:
        build(environ={"CRM_CONFIG": str(missing)})
    assert str(missing) in str(excinfo.value)


def test_an_invalid_config_file_is_named(tmp_path: Path):
    broken = _write(tmp_path / "broken.toml", "PAGE_SIZE = = 3\n")
    with pytest.raises(ConfigError, match="is not valid TOML") as excinfo:
        build(broken, environ={})
    assert str(broken) in str(excinfo.value)


# Import every crmcore module in a fresh interpreter while counting what gets built.
IMPORT_SCRIPT = """
import importlib, json, os, pkgutil, sys

import flask, pluggy, sqlalchemy, stevedore

built = {"Flask": 0, "PluginManager": 0, "ExtensionManager": 0, "create_engine": 0}


def counting(name, function):
    def wrapper(*args, **kwargs):
        built[name] += 1
        return function(*args, **kwargs)

    return wrapper


flask.Flask.__init__ = counting("Flask", flask.Flask.__init__)
pluggy.PluginManager.__init__ = counting("PluginManager", pluggy.PluginManager.__init__)
stevedore.ExtensionManager.__init__ = counting("ExtensionManager", stevedore.ExtensionManager.__init__)
sqlalchemy.create_engine = counting("create_engine", sqlalchemy.create_engine)
sqlalchemy.engine.create_engine = sqlalchemy.create_engine

import crmcore


def fail(name):
    raise ImportError(f"cannot import {name}")


modules = ["crmcore"]
for info in pkgutil.walk_packages(crmcore.__path__, "crmcore.", onerror=fail):
    if info.name != "crmcore.__main__":
        importlib.import_module(info.name)
        modules.append(info.name)

from crmcore.plugins import PluginHost

found = []
for name in modules:
    for attribute, value in vars(sys.modules[name]).items():
        if isinstance(value, (flask.Flask, pluggy.PluginManager, PluginHost)):
            found.append(f"{name}.{attribute}")
print("FACTS " + json.dumps({
    "modules": modules,
    "built": built,
    "instances": found,
    "app_context": flask.has_app_context(),
    "files": sorted(os.listdir(".")),
}))
"""


def test_importing_crmcore_builds_nothing(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_SCRIPT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    facts = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("FACTS "))[6:])

    assert {"crmcore.app", "crmcore.plugins", "crmcore.plugin_api", "crmcore.cli"} <= set(facts["modules"])
    assert facts["built"] == {"Flask": 0, "PluginManager": 0, "ExtensionManager": 0, "create_engine": 0}
    assert facts["instances"] == []
    assert facts["app_context"] is False
    assert facts["files"] == []  # no database file, no instance folder


def test_secure_cookies_flag_is_a_real_boolean(monkeypatch):
    from crmcore import create_app

    monkeypatch.setenv("CRM_SECURE_COOKIES", "0")
    assert create_app({"DATABASE_URL": "sqlite://"}).config["SESSION_COOKIE_SECURE"] is False
    monkeypatch.setenv("CRM_SECURE_COOKIES", "1")
    assert create_app({"DATABASE_URL": "sqlite://"}).config["SESSION_COOKIE_SECURE"] is True

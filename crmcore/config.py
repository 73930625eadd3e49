"""Configuration: defaults, then an optional config file, then ``CRM_*`` environment variables.

The explicit mapping passed to :func:`crmcore.create_app` is applied last; tests and embedding
applications use it to override everything else.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {
    # None means "a SQLite file in the instance folder", resolved by the app factory.
    "DATABASE_URL": None,
    "SECRET_KEY": "dev-only-change-me",
    # None means every installed plugin is enabled.
    "PLUGINS": None,
    # Non-essential built-in plugins that should not be registered.
    "DISABLED_BUILTINS": [],
    "STRICT_PLUGINS": False,
    # Behind HTTPS, 1 marks the session and remember-me cookies Secure.
    "SECURE_COOKIES": False,
    "DEFAULT_COUNTRY": "FR",
    "DEFAULT_LANGUAGE": "fr",
    # Visibility of a contact created without one (API, form, import, vCard): see services/access.py.
    "DEFAULT_VISIBILITY": "public_read",
    "PAGE_SIZE": 50,
    # SQLite page cache per connection, in MB: indexes of a large base stay in memory while writing.
    "SQLITE_CACHE_MB": 64,
    # Large imports read and validate the file in a second process: auto, on or off (interchange/read_ahead.py).
    "IMPORT_READ_AHEAD": "auto",
    # Largest request body read (uploads: imports up to 50 MB, photos up to 10 MB); larger gets 413.
    "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
    "MAX_PAGE_SIZE": 500,
    # Mail domains that do not identify an organisation: ignored by "related contacts".
    "PUBLIC_MAIL_DOMAINS": [
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.fr",
        "hotmail.com",
        "hotmail.fr",
        "outlook.com",
        "outlook.fr",
        "live.com",
        "live.fr",
        "msn.com",
        "icloud.com",
        "me.com",
        "aol.com",
        "gmx.com",
        "gmx.fr",
        "gmx.de",
        "web.de",
        "orange.fr",
        "wanadoo.fr",
        "free.fr",
        "sfr.fr",
        "laposte.net",
        "protonmail.com",
        "proton.me",
        "mail.com",
        "yandex.ru",
    ],
    # SMTP (crmcore.mail): typed here so environment values are read as numbers and booleans.
    "SMTP_HOST": "localhost",
    "SMTP_PORT": 25,
    "SMTP_USER": "",
    "SMTP_PASSWORD": "",
    "SMTP_STARTTLS": False,
    "SMTP_SSL": False,
    "SMTP_TIMEOUT": 30,
    "MAIL_FROM": "",
    "MAIL_FROM_NAME": "",
    # A user who becomes an owner of a contact (not through an import) is emailed (crmcore.builtin.notify).
    "NOTIFY_ASSIGNMENT": True,
}

# Keys whose environment value is a comma-separated list.
_LIST_KEYS = {"PLUGINS", "DISABLED_BUILTINS", "PUBLIC_MAIL_DOMAINS"}
# Keys that take one of a few words.
_CHOICES = {
    "DEFAULT_VISIBILITY": ("private", "public_read", "public_write"),
    "IMPORT_READ_AHEAD": ("auto", "on", "off"),
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


def _coerce(key: str, raw: str, default: Any) -> Any:
    if key in _LIST_KEYS:
        return [item.strip() for item in raw.split(",") if item.strip()]
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"CRM_{key}: expected a boolean (1/0, true/false), got {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"CRM_{key}: expected an integer, got {raw!r}") from None
    return raw


def load_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML config file; keys are the names without the ``CRM_`` prefix."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {file}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
    return {key.upper(): value for key, value in data.items()}


def from_environment(environ: Mapping[str, str], defaults: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith("CRM_") or name == "CRM_CONFIG":
            continue
        key = name[4:]
        values[key] = _coerce(key, raw, defaults.get(key))
    return values


def build(
    overrides: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return the merged configuration.

    ``overrides`` may be a mapping (applied last) or the path of a TOML file (used as the config file).
    Without a path argument, ``CRM_CONFIG`` names the config file.
    """
    environ = os.environ if environ is None else environ
    config: dict[str, Any] = dict(DEFAULTS)
    explicit: Mapping[str, Any] = {}
    config_file: str | os.PathLike[str] | None = environ.get("CRM_CONFIG") or None
    if isinstance(overrides, (str, os.PathLike)):
        config_file = overrides
    elif overrides is not None:
        explicit = overrides
    if config_file:
        config.update(load_file(config_file))
    config.update(from_environment(environ, DEFAULTS))
    config.update(explicit)
    if isinstance(config.get("PLUGINS"), str):
        config["PLUGINS"] = _coerce("PLUGINS", config["PLUGINS"], None)
    _check_choices(config)
    return config


def _check_choices(config: dict[str, Any]) -> None:
    """Words are checked whatever set them (file, environment, mapping): a typo stops the start."""
    for key, allowed in _CHOICES.items():
        value = config.get(key)
        if isinstance(value, str):
            value = value.strip().lower()
        if value not in allowed:
            raise ConfigError(f"CRM_{key}: expected one of {', '.join(allowed)}, got {config.get(key)!r}")
        config[key] = value

"""crmcore: a plugin-based CRM framework. ``create_app`` is the only entry point; nothing is built at import."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from collections.abc import Mapping
    from os import PathLike

    from flask import Flask


def create_app(config: Mapping[str, Any] | str | PathLike[str] | None = None) -> Flask:
    """Build a crmcore application. See :func:`crmcore.app.create_app`."""
    from crmcore.app import create_app as _create_app

    return _create_app(config)


__all__ = ["__version__", "create_app"]

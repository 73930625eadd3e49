"""Plugin discovery (stevedore), registration (pluggy) and safe collection of contributions.

The :class:`PluginHost` is created by the app factory and kept in ``app.extensions["crm"]``.
Nothing here runs at import time.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from types import GeneratorType, ModuleType
from typing import Any

import click
import pluggy
from flask import Blueprint
from stevedore import ExtensionManager, NamedExtensionManager

from crmcore import hookspecs
from crmcore.contributions import Action, Channel, FieldDef, MenuItem, Migrations, Tab
from crmcore.errors import PluginError

log = logging.getLogger("crmcore.plugins")

ENTRY_POINT_GROUP = "crm.plugins"


@dataclass(frozen=True)
class Builtin:
    name: str
    module: str
    #: Essential built-ins cannot be disabled; the others can through ``CRM_DISABLED_BUILTINS``.
    essential: bool = False


BUILTINS: tuple[Builtin, ...] = (
    Builtin("history", "crmcore.builtin.history", essential=True),
    Builtin("notes", "crmcore.builtin.notes"),
    Builtin("messages", "crmcore.builtin.messages"),
    Builtin("email", "crmcore.builtin.email_channel"),
    Builtin("notify", "crmcore.builtin.notify"),
    Builtin("vcard", "crmcore.builtin.vcard"),
    Builtin("envelope", "crmcore.builtin.envelope"),
)

#: What each collection hook must return; anything else is refused and logged.
EXPECTED_TYPES: dict[str, type | tuple[type, ...]] = {
    "contact_tabs": Tab,
    "contact_actions": Action,
    "register_mass_actions": Action,
    "register_custom_fields": FieldDef,
    "register_channels": Channel,
    "register_blueprints": Blueprint,
    "register_commands": click.Command,
    "register_migrations": Migrations,
    "register_menu_items": MenuItem,
}


@dataclass
class PluginRecord:
    """What ``crm plugins`` and ``GET /api/v1/plugins`` report for one plugin."""

    name: str
    version: str | None
    status: str  # loaded | disabled | failed
    builtin: bool = False
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    distribution: str | None = None
    #: Problems met after loading (a hook that raised, an invalid contribution), newest last.
    incidents: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Incident:
    plugin: str
    hook: str
    error: str
    at: str


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset, GeneratorType)):
        return list(value)
    return [value]


class PluginHost:
    """Owns the pluggy manager of one application and what is known about each plugin."""

    MAX_INCIDENTS = 20

    def __init__(self, strict: bool = False) -> None:
        self.pm = pluggy.PluginManager("crm")
        self.pm.add_hookspecs(hookspecs)
        self.strict = strict
        self.records: dict[str, PluginRecord] = {}
        #: Called with every incident, so the app can persist it (set by the app factory).
        self.on_incident: Callable[[Incident], None] | None = None
        self._dists: dict[str, Any] = {}

    # -- loading --------------------------------------------------------------------------------

    def load(
        self,
        enabled: Iterable[str] | None,
        disabled_builtins: Iterable[str] = (),
        extra: Mapping[str, Any] | None = None,
        core_version: str | None = None,
    ) -> None:
        """Register the built-ins, then the enabled entry-point plugins, then ``extra`` objects.

        ``enabled`` None means every installed plugin. ``extra`` maps names to plugin objects
        registered directly (tests and embedding applications).
        """
        disabled = set(disabled_builtins)
        for builtin in BUILTINS:
            if builtin.name in disabled and not builtin.essential:
                self.records[builtin.name] = PluginRecord(
                    builtin.name, core_version, "disabled", builtin=True
                )
                continue
            try:
                module = importlib.import_module(builtin.module)
            except Exception as exc:  # a broken built-in is a bug: always fatal
                raise PluginError(
                    f"built-in plugin {builtin.name} failed to import: {_describe(exc)}"
                ) from exc
            self._register(builtin.name, module, core_version, builtin=True, distribution="crmcore")

        installed = {ep.name: ep for ep in ExtensionManager(ENTRY_POINT_GROUP).list_entry_points()}
        # stevedore's cached entry points carry no distribution; importlib.metadata knows it.
        self._dists = {ep.name: ep.dist for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
        wanted = list(installed) if enabled is None else [name for name in enabled if name]
        for name in sorted(set(installed) - set(wanted)):
            version, distribution = self._dist_of(name)
            self.records[name] = PluginRecord(name, version, "disabled", distribution=distribution)
        for name in wanted:
            if name in self.records and self.records[name].builtin:
                continue  # a built-in listed in CRM_PLUGINS is simply enabled
            if name not in installed:
                self._fail(name, None, None, "enabled in CRM_PLUGINS but not installed")

        to_load = [name for name in wanted if name in installed]
        if to_load:
            loaded = NamedExtensionManager(
                ENTRY_POINT_GROUP,
                names=to_load,
                name_order=True,
                on_load_failure_callback=self._on_load_failure,
                on_missing_entrypoints_callback=lambda names: None,
            )
            for ext in loaded:
                plugin = ext.plugin() if isinstance(ext.plugin, type) else ext.plugin
                version, distribution = self._dist_of(ext.name)
                self._register(ext.name, plugin, version, distribution=distribution)

        for name, plugin in (extra or {}).items():
            self._register(name, plugin, None)

    def _dist_of(self, name: str) -> tuple[str | None, str | None]:
        dist = self._dists.get(name)
        return (dist.version, dist.metadata["Name"]) if dist is not None else (None, None)

    def _on_load_failure(self, manager: Any, entry_point: Any, exc: BaseException) -> None:
        version, distribution = self._dist_of(entry_point.name)
        self._fail(entry_point.name, version, distribution, f"import failed: {_describe(exc)}", exc)

    def _fail(
        self,
        name: str,
        version: str | None,
        distribution: str | None,
        error: str,
        exc: BaseException | None = None,
    ) -> None:
        log.error(
            "plugin %s failed: %s", name, error, exc_info=(type(exc), exc, exc.__traceback__) if exc else None
        )
        self.records[name] = PluginRecord(name, version, "failed", error=error, distribution=distribution)
        if self.strict:
            raise PluginError(f"plugin {name}: {error}")

    def _register(
        self,
        name: str,
        plugin: ModuleType | object,
        version: str | None,
        builtin: bool = False,
        distribution: str | None = None,
    ) -> None:
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:
            self._fail(name, version, distribution, f"registration failed: {_describe(exc)}", exc)
            return
        unknown = [caller.name for caller in self.pm.get_hookcallers(plugin) or [] if not caller.has_spec()]
        if unknown:
            # A typo in a hook name would otherwise silently do nothing.
            self.pm.unregister(plugin)
            self._fail(name, version, distribution, f"implements unknown hooks: {', '.join(sorted(unknown))}")
            return
        hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])
        self.records[name] = PluginRecord(
            name, version, "loaded", builtin=builtin, hooks=hooks, distribution=distribution
        )

    def mark_failed(self, name: str, error: str, exc: BaseException | None = None) -> None:
        """Unregister a loaded plugin whose set-up failed (e.g. its blueprint could not be attached)."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        record = self.records.get(name)
        self._fail(
            name, record.version if record else None, record.distribution if record else None, error, exc
        )

    # -- calling --------------------------------------------------------------------------------

    @property
    def hook(self) -> Any:
        """The pluggy hook relay, for data hooks whose errors must propagate."""
        return self.pm.hook

    def collect(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call each implementation of ``hook_name`` on its own and return ``(plugin, item)`` pairs.

        An implementation that raises, or an item of the wrong type, is logged and skipped: one
        broken plugin never takes a page down.
        """
        caller = getattr(self.pm.hook, hook_name)
        expected = EXPECTED_TYPES.get(hook_name)
        results: list[tuple[str, Any]] = []
        # pluggy calls the most recently registered implementation first; keep registration order.
        for impl in caller.get_hookimpls():
            try:
                produced = _as_list(impl.function(*[kwargs[arg] for arg in impl.argnames]))
            except Exception as exc:
                self.incident(impl.plugin_name, hook_name, exc)
                continue
            for item in produced:
                if expected is not None and not isinstance(item, expected):
                    self.incident(
                        impl.plugin_name,
                        hook_name,
                        TypeError(f"returned {type(item).__name__}, expected {_type_names(expected)}"),
                    )
                    continue
                results.append((impl.plugin_name, item))
        return results

    def notify_each(self, hook_name: str, **kwargs: Any) -> None:
        """Call every implementation; an exception marks that plugin failed (lifecycle hooks)."""
        caller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            try:
                impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception as exc:
                self.mark_failed(impl.plugin_name, f"{hook_name} failed: {_describe(exc)}", exc)

    def incident(self, plugin: str, hook: str, exc: BaseException) -> None:
        log.error(
            "plugin %s: hook %s failed: %s",
            plugin,
            hook,
            _describe(exc),
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        entry = Incident(plugin, hook, _describe(exc), datetime.now(UTC).isoformat(timespec="seconds"))
        record = self.records.get(plugin)
        if record is not None:
            record.incidents.append({"hook": entry.hook, "error": entry.error, "at": entry.at})
            del record.incidents[: -self.MAX_INCIDENTS]
        if self.on_incident is not None:
            try:
                self.on_incident(entry)
            except Exception:  # reporting must never break the page being built
                log.warning("could not persist plugin incident:\n%s", traceback.format_exc())

    # -- reporting ------------------------------------------------------------------------------

    def loaded_names(self) -> list[str]:
        return [name for name, record in self.records.items() if record.status == "loaded"]

    def report(self) -> list[dict[str, Any]]:
        return [
            record.to_dict()
            for record in sorted(self.records.values(), key=lambda r: (not r.builtin, r.name))
        ]


def _type_names(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(t.__name__ for t in types)

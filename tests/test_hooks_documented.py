"""Every hook of ``crmcore/hookspecs.py`` is documented in ``docs/plugins.md``, and nothing else is.

In the "Hook reference" part of the guide, each hook has a ``### <name>`` heading and an example
implementing it (``def <name>(``). A hook added without documentation, or documentation left for
a hook that was removed or renamed, fails here (as in datasette's ``test_plugin_hooks_are_documented``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crmcore import hookspecs

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
REFERENCE_TITLE = "## Hook reference"


def spec_names() -> list[str]:
    # pluggy's HookspecMarker("crm") marks each spec with a ``crm_spec`` attribute.
    return sorted(
        name
        for name in dir(hookspecs)
        if callable(getattr(hookspecs, name)) and hasattr(getattr(hookspecs, name), "crm_spec")
    )


def reference_sections() -> dict[str, str]:
    """``### name`` heading -> the text under it, within the hook reference part of the guide."""
    text = DOC.read_text(encoding="utf-8")
    assert REFERENCE_TITLE in text, f"{DOC} has no '{REFERENCE_TITLE}' part"
    reference = text.split(REFERENCE_TITLE, 1)[1]
    reference = re.split(r"^## ", reference, maxsplit=1, flags=re.MULTILINE)[0]
    parts = re.split(r"^### +(.+?) *$", reference, flags=re.MULTILINE)
    return {title.strip("` "): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_the_spec_is_read():
    names = spec_names()
    assert {"contact_tabs", "register_custom_fields", "contact_created"} <= set(names)


@pytest.mark.parametrize("hook", spec_names())
def test_hook_is_documented_with_an_example(hook: str):
    sections = reference_sections()
    assert hook in sections, f"hook {hook!r} has no '### {hook}' heading under '{REFERENCE_TITLE}' in {DOC}"
    assert f"def {hook}(" in sections[hook], f"the section of {hook!r} in {DOC} has no example 'def {hook}('"


def test_every_documented_hook_exists():
    stale = sorted(set(reference_sections()) - set(spec_names()))
    assert not stale, f"{DOC} documents hooks that crmcore/hookspecs.py does not define: {', '.join(stale)}"

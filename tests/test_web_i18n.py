"""French and English: the catalog covers every page string, the compiled catalog is fresh, pages switch."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "crmcore" / "translations" / "fr" / "LC_MESSAGES"
#: The same keywords as the extraction command in babel.cfg.
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}


def _extracted() -> dict[Any, str]:
    with open(ROOT / "babel.cfg") as config:
        method_map, options_map = parse_mapping_cfg(config)
    # Every pattern of babel.cfg is under crmcore/: walk only that folder.
    assert all(pattern.startswith("crmcore/") for pattern, _method in method_map)
    method_map = [(pattern[len("crmcore/") :], method) for pattern, method in method_map]
    options_map = {pattern[len("crmcore/") :]: options for pattern, options in options_map.items()}
    found: dict[Any, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT / "crmcore"), method_map, options_map, keywords=KEYWORDS
    ):
        key = message if isinstance(message, str) else tuple(message)
        found.setdefault(key, f"{filename}:{lineno}")
    return found


def _po() -> Any:
    with open(CATALOG / "messages.po", "rb") as po_file:
        return read_po(po_file, locale="fr")


def test_every_page_string_has_a_french_translation():
    catalog = _po()
    missing = []
    for message_id, where in _extracted().items():
        singular = message_id[0] if isinstance(message_id, tuple) else message_id
        entry = catalog.get(singular)
        strings = entry.string if entry is not None else None
        translated = (
            entry is not None
            and not entry.fuzzy
            and (all(strings) if isinstance(strings, tuple) else bool(strings))
        )
        if not translated:
            missing.append(f"{where}: {singular!r}")
    assert not missing, (
        "strings without a French translation (see babel.cfg for the pybabel commands):\n"
        + "\n".join(missing)
    )


def test_compiled_catalog_is_up_to_date():
    catalog = _po()
    with open(CATALOG / "messages.mo", "rb") as mo_file:
        compiled = read_mo(mo_file)

    def plain(value: Any) -> Any:
        return tuple(value) if isinstance(value, (list, tuple)) else value

    expected = {plain(m.id): plain(m.string) for m in catalog if m.id and m.string and not m.fuzzy}
    actual = {plain(m.id): plain(m.string) for m in compiled if m.id}
    assert actual == expected, (
        "messages.mo is stale: run `.venv/bin/pybabel compile -d crmcore/translations -l fr`"
    )


def test_placeholders_survive_translation():
    for message in _po():
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(re.findall(r"%\(\w+\)[sd]", " ".join(ids)))
        for text in strings:
            assert set(re.findall(r"%\(\w+\)[sd]", text)) == wanted, (message.id, text)


# -- pages in both languages ------------------------------------------------------------------------


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _signed_in(app: Any, language: str | None, accept: str | None = None) -> Any:
    from werkzeug.security import generate_password_hash

    from crmcore.extensions import db
    from crmcore.services.users import create_user

    user = create_user(f"{language or 'browser'}@example.com", None, is_admin=True, language=language)
    user.password_hash = generate_password_hash("password123", method="pbkdf2:sha256:1")
    db.session.commit()
    client = app.test_client()
    if accept:
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = accept
    token = _csrf(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"email": user.email, "password": "password123", "csrf_token": token})
    return client


def _text(response: Any) -> str:
    return unescape(response.get_data(as_text=True))


def test_pages_in_french_for_a_french_user(app, make_contact):
    client = _signed_in(app, "fr")
    listing = _text(client.get("/contacts?view=list"))
    assert '<html lang="fr">' in listing
    assert "+ Personne" in listing and "Tout sélectionner" in listing and "Ajouter un tag" in listing
    form = _text(client.get("/contacts/new"))
    for label in (
        "Prénom",
        "Nom",
        "Civilité",
        "Enregistrer et créer un nouveau",
        "Ajouter un téléphone",
        "Copier l’adresse principale",
        "Il y a déjà un contact avec ce nom",
        "Ne pas contacter par email",
    ):
        assert label in form, label
    assert ">Domicile<" in form  # phone types use their French label
    token = _csrf(form)
    refused = _text(
        client.post("/contacts/new", data={"kind": "person", "first_name": "Zoé", "csrf_token": token})
    )
    assert "est obligatoire pour une personne" in refused
    assert "Le contact n’a pas été enregistré" in refused
    contact = make_contact(last_name="Lefèvre", status="customer")
    page = _text(client.get(f"/contacts/{contact.id}"))
    assert "Détails" in page and "Historique" in page and ">Client<" in page
    admin = _text(client.get("/admin/users"))
    assert "Utilisateurs" in admin and "Créer l’utilisateur" in admin


def test_pages_in_english_and_language_switch(app):
    client = _signed_in(app, None, accept="en-US,en;q=0.8")
    form = _text(client.get("/contacts/new"))
    for label in (
        "First name",
        "Last name",
        "Save and create new",
        "Add a phone",
        "A contact with this name already exists",
    ):
        assert label in form, label
    token = _csrf(form)
    client.post("/language/fr", data={"csrf_token": token, "next": "/contacts/new"})
    assert "Enregistrer et créer un nouveau" in _text(client.get("/contacts/new"))


def test_browser_language_is_used_without_a_preference(app):
    client = _signed_in(app, None, accept="fr-FR,fr;q=0.9")
    assert "Nouveau contact" in _text(client.get("/contacts/new"))

"""vCard 2.1, 3.0 and 4.0 import and export.

Reading
-------
:func:`read_cards` turns a file into one :class:`~crmcore.interchange.ImportRecord` per card
(``position`` = card number, 1..n). vobject tokenises each property line (group, name, parameters);
what vobject gets wrong on real files is handled here first:

* line breaks: CRLF, LF, CR and the CR CR LF some iPhone exports write;
* folding: 3.0/4.0 continuation lines, 2.1 quoted-printable soft line breaks and 2.1 base64 blocks
  (unindented, ended by a blank line);
* quoted-printable values are decoded with their ``CHARSET`` (vobject joins soft breaks with a newline
  and fails on an unknown charset); 8-bit values use their ``CHARSET``, else UTF-8, else Windows-1252;
* values are unescaped by us: vobject's text decoding keeps only what precedes the first comma of a
  2.1 value (``NOTE:a, b`` -> ``a``) and leaves ``http\\://`` escaped;
* ``PROFILE:VCard`` (Lotus Notes) and a repeated ``BEGIN:VCARD`` are reported and skipped, where
  vobject refuses the whole file.

A card that cannot be read at all (no name, email or phone to file it under, no END...) becomes a
record with ``error``; a property that cannot be read (bad base64 photo, unreadable line, phone number
phonenumbers cannot parse) is reported in ``record.warnings`` and the rest of the card is kept.
Properties the contact does not model (X- properties, item-group labels, nicknames, phones that could
not be parsed...) are stored by ``record.after_save`` in ``contact_vcard_extras`` and written back on
export. ``after_save`` also stores the photo (through :mod:`crmcore.services.photos`) and the card's
notes (as customer notes).

Writing
-------
:func:`write_cards` yields one card at a time (vobject serialises it): names, photo, every email and
phone with its type, addresses with their kind, organization and department, title, customer notes,
tags as CATEGORIES, birthday, website and social links, custom fields as ``X-CRM-<KEY>`` and the stored
extras. Reading what it writes gives back the same names, emails, phones and addresses.
3.0 (the default) and 4.0 are serialised by vobject; 2.1 (for old phones and Outlook) is rendered
from the same card by :func:`_render_21`, since vobject writes only the 3.0 syntax (comma lists of
parameters, backslash escapes) and counts characters instead of octets when folding.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import quopri
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import IO, Any

import vobject
from flask import current_app
from sqlalchemy import select

from crmcore.builtin.vcard import Extra, extras_of, replace_extras
from crmcore.errors import ValidationError
from crmcore.extensions import db
from crmcore.interchange import ImportRecord
from crmcore.models import Contact, ContactPhoto, Note
from crmcore.services import lookups
from crmcore.services.contacts import EAGER
from crmcore.services.fields import EMAIL_RE, all_fields, clean_value
from crmcore.services.phones import InvalidPhone, to_e164
from crmcore.services.territories import countries
from crmcore.services.text import fold

VERSIONS = ("2.1", "3.0", "4.0")
MAX_NOTE = 20000

#: Standard properties the contact does not model but that are worth keeping for re-export.
KEPT = {
    "NICKNAME",
    "ROLE",
    "ANNIVERSARY",
    "GENDER",
    "IMPP",
    "GEO",
    "TZ",
    "RELATED",
    "LANG",
    "CALURI",
    "FBURL",
    "CALADRURI",
    "EXPERTISE",
    "HOBBY",
    "INTEREST",
}
#: Properties that are derived (LABEL from ADR), generated (REV, PRODID) or meaningless once imported.
DROPPED = {
    "VERSION",
    "PRODID",
    "REV",
    "UID",
    "LABEL",
    "PROFILE",
    "NAME",
    "SOURCE",
    "MAILER",
    "CLASS",
    "SORT-STRING",
    "KIND",
    "AGENT",
    "KEY",
    "SOUND",
    "LOGO",
    "CLIENTPIDMAP",
    "XML",
    "MEMBER",
}
SOCIAL_DOMAINS = {
    "twitter.com": "twitter",
    "x.com": "twitter",
    "linkedin.com": "linkedin",
    "facebook.com": "facebook",
    "instagram.com": "instagram",
    "github.com": "github",
    "youtube.com": "youtube",
    "mastodon.social": "mastodon",
}
#: TEL types of vCard 3.0/4.0 other than home/work/cell/fax, written as they are.
STANDARD_TEL_TYPES = {"pager", "video", "msg", "bbs", "modem", "car", "isdn", "pcs", "text", "textphone"}
ADDRESS_TYPES = {"main": "WORK", "personal": "HOME", "billing": "X-BILLING", "shipping": "X-SHIPPING"}
APPLE_LABEL = re.compile(r"^_\$!<(.*)>!\$_$")
COUNTRY_ALIASES = {
    "usa": "US",
    "us": "US",
    "united states of america": "US",
    "america": "US",
    "uk": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "holland": "NL",
    "deutschland": "DE",
    "brd": "DE",
}


class Unreadable(ValueError):
    """A card that cannot be imported at all; the message says why."""


# -- step 1: bytes -> cards -> logical lines -----------------------------------------------------------


@dataclass
class RawCard:
    position: int
    first_line: int
    lines: list[tuple[int, bytes]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    closed: bool = False


_BEGIN = re.compile(rb"^\s*BEGIN\s*:\s*VCARD\s*$", re.IGNORECASE)
_END = re.compile(rb"^\s*END\s*:\s*VCARD\s*$", re.IGNORECASE)
_PROPERTY = re.compile(rb"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)?[;:]")
_BASE64_LINE = re.compile(rb"^[A-Za-z0-9+/=\s]+$")


def _physical_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Numbered lines without their line break, whatever the line break (CRLF, LF, CR, CR CR LF)."""
    number = 0
    for chunk in stream:
        # A line read up to LF may still hold old-Mac CR breaks; CR CR LF is one break.
        parts = (
            chunk.rstrip(b"\r\n").split(b"\r") if b"\r" in chunk.rstrip(b"\r\n") else [chunk.rstrip(b"\r\n")]
        )
        for part in parts:
            number += 1
            yield number, part


def split_cards(stream: IO[bytes]) -> Iterator[RawCard]:
    """Cut a file into cards, numbered from 1; text outside cards is ignored."""
    card: RawCard | None = None
    position = 0
    nested = 0
    for number, line in _physical_lines(stream):
        if _BEGIN.match(line):
            if card is None:
                position += 1
                card = RawCard(position, number)
            elif card.lines and card.lines[-1][1].rstrip().upper().endswith(b"AGENT:"):
                nested += 1  # a 2.1 AGENT embeds a whole card: skipped with its AGENT line
                card.lines.pop()
            elif (
                len([ln for _, ln in card.lines if ln.strip() and not ln.upper().startswith(b"VERSION")]) == 0
            ):
                card.warnings.append(f"line {number}: BEGIN:VCARD repeated; the repeated line was ignored")
            else:
                card.warnings.append(f"line {number}: END:VCARD missing before the next card")
                yield card
                position += 1
                card = RawCard(position, number)
            continue
        if card is None:
            continue
        if nested:
            if _END.match(line):
                nested -= 1
            continue
        if _END.match(line):
            card.closed = True
            yield card
            card = None
            continue
        card.lines.append((number, line))
    if card is not None:
        card.warnings.append("END:VCARD missing at the end of the file")
        yield card


def _header(line: bytes) -> bytes:
    """The part of a property line before its value (name and parameters), quotes respected."""
    quoted = False
    for index, byte in enumerate(line):
        if byte == 0x22:
            quoted = not quoted
        elif byte == 0x3A and not quoted:
            return line[:index]
    return line


def _is_qp(header: bytes) -> bool:
    return b"QUOTED-PRINTABLE" in header.upper()


def _is_base64(header: bytes) -> bool:
    upper = header.upper()
    return b"ENCODING=B" in upper or b";BASE64" in upper


def logical_lines(card: RawCard) -> Iterator[tuple[int, bytes]]:
    """Unfold a card: 3.0 folding, 2.1 quoted-printable soft breaks and 2.1 base64 blocks."""
    current: bytearray | None = None
    start = 0
    header = b""
    for number, line in card.lines:
        if current is not None:
            if _is_qp(header) and current.endswith(b"="):
                del current[-1]
                current += line  # a soft line break: the next line continues as it is
                continue
            if line[:1] in (b" ", b"\t"):
                current += line[1:] if not _is_base64(header) else line.strip()
                continue
            if line.strip() and _is_base64(header) and _BASE64_LINE.match(line) and not _PROPERTY.match(line):
                current += line.strip()  # 2.1 base64 data written without indentation
                continue
            yield start, bytes(current)
            current = None
        if not line.strip():
            continue  # blank lines end a 2.1 base64 block; they carry nothing
        current = bytearray(line)
        start = number
        header = _header(line)
    if current is not None:
        yield start, bytes(current)


# -- step 2: logical lines -> properties ------------------------------------------------------------


@dataclass
class Prop:
    group: str | None
    name: str
    params: dict[str, list[str]]
    #: The value in 3.0/4.0 escaped form (2.1 values are escaped on reading so both are alike).
    value: str
    line: int
    binary: bytes | None = None

    @property
    def types(self) -> set[str]:
        return {t.lower() for t in self.params.get("TYPE", [])}

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None


def _decode(data: bytes, charset: str | None) -> str:
    if charset:
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _escape_21(text: str) -> str:
    """A 2.1 value (commas and newlines literal) in 3.0 form; ``;`` separators are kept."""
    return text.replace("\\,", ",").replace(",", "\\,").replace("\r\n", "\n").replace("\n", "\\n")


def parse_property(number: int, line: bytes, version: str) -> Prop:
    """One logical line -> :class:`Prop`; raises ValueError saying why it cannot be read."""
    header = _header(line)
    raw_value = line[len(header) + 1 :]
    charset_match = re.search(rb";\s*CHARSET=([A-Za-z0-9_.:-]+)", header, re.IGNORECASE)
    charset = charset_match.group(1).decode("ascii") if charset_match else None
    try:
        header_text = header.decode("ascii")
    except UnicodeDecodeError:
        header_text = _decode(header, charset)
    try:
        name, params, _value, group = vobject.base.parseLine(header_text + ":", number)
    except vobject.base.ParseError as exc:
        raise ValueError(f"line {number}: unreadable property line ({exc})") from None
    table: dict[str, list[str]] = {}
    for param in params:
        if len(param) == 1:  # 2.1 bare parameters: TEL;CELL;PREF -> TYPE
            bare = param[0].upper()
            key = "ENCODING" if bare in ("QUOTED-PRINTABLE", "BASE64", "8BIT", "7BIT") else "TYPE"
            table.setdefault(key, []).append(param[0])
        else:
            values = [v for part in param[1:] for v in part.split(",")]
            table.setdefault(param[0].upper(), []).extend(values)
    encodings = {e.upper() for e in table.pop("ENCODING", [])}
    table.pop("CHARSET", None)
    name = name.upper()
    binary = None
    if "QUOTED-PRINTABLE" in encodings:
        value = _decode(quopri.decodestring(raw_value), charset).replace("\r\n", "\n")
        value = _escape_21(value) if version == "2.1" else value.replace("\n", "\\n")
    elif encodings & {"B", "BASE64"}:
        compact = re.sub(rb"\s+", b"", raw_value)
        try:
            binary = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"line {number}: {name} has invalid base64 data ({exc})") from None
        value = compact.decode("ascii")
    else:
        value = _decode(raw_value, charset)
        if version == "2.1":
            value = _escape_21(value)
    return Prop(group.lower() if group else None, name, table, value, number, binary)


# -- value helpers ----------------------------------------------------------------------------------


def unescape(text: str) -> str:
    """A 3.0/4.0 text value: ``\\n`` is a newline, any other backslash escapes the next character."""
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) in "nN" else m.group(1), text, flags=re.DOTALL)


def split_unescaped(text: str, separator: str) -> list[str]:
    """Split on ``separator`` where it is not backslash-escaped; parts stay escaped."""
    parts: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            current.append(char)
            current.append(next(chars, ""))
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def structured(value: str) -> list[list[str]]:
    """``Doe;John;Richter,James;;`` -> ``[["Doe"], ["John"], ["Richter", "James"], [], []]``."""
    return [
        [unescape(item).strip() for item in split_unescaped(part, ",") if unescape(item).strip()]
        for part in split_unescaped(value, ";")
    ]


def escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\n")
        .replace("\n", "\\n")
    )


def _component(parts: list[list[str]], index: int, joiner: str = " ") -> str:
    return joiner.join(parts[index]) if index < len(parts) else ""


@cache
def _country_names() -> dict[str, str]:
    from babel import Locale

    names: dict[str, str] = {}
    codes = countries()
    for language in ("en", "fr", "de", "es", "it", "nl", "pt"):
        for code, name in Locale(language).territories.items():
            if code in codes:
                names.setdefault(_country_key(name), code)
    for code in codes:
        names.setdefault(code.lower(), code)
    for alias, code in COUNTRY_ALIASES.items():
        names[_country_key(alias)] = code
    return names


def _country_key(text: str) -> str:
    return " ".join(re.sub(r"[^\w ]+", "", fold(text).replace("-", " ")).split())


def country_code(text: str) -> str | None:
    """ISO code for a country as people write it ("France", "U.S.A.", "Deutschland", "GB")."""
    if not text.strip():
        return None
    return _country_names().get(_country_key(text))


def _pref_rank(prop: Prop) -> int | None:
    """0 for the preferred one (3.0 TYPE=pref, 2.1 PREF), 4.0 PREF=n as n; None if not preferred."""
    if "pref" in prop.types:
        return 0
    pref = prop.param("PREF")
    if pref is not None:
        return int(pref) if pref.isdigit() else 0
    return None


def parse_birthday(text: str) -> dt.date | None:
    match = re.match(r"^\s*(\d{4})-?(\d{2})-?(\d{2})(?:T.*)?\s*$", text)
    if not match:
        return None
    try:
        return dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


# -- step 3: properties -> the API's JSON shape -------------------------------------------------------


class ReadContext:
    """What reading needs from the application, looked up once per file."""

    def __init__(self) -> None:
        self.default_country = current_app.config.get("DEFAULT_COUNTRY")
        self.phone_types = {value.key: value for value in lookups.values("phone_type")}
        self.phone_labels = {}
        for value in self.phone_types.values():
            for label in (value.key, value.label_en, value.label_fr):
                self.phone_labels.setdefault(fold(label).rstrip("."), value.key)
        self.salutations: dict[str, str] = {}
        for value in lookups.values("salutation"):
            for label in (value.key, value.label_en, value.label_fr):
                self.salutations.setdefault(fold(label).rstrip("."), value.key)
        self.fields = all_fields()


@dataclass
class CardResult:
    data: dict[str, Any]
    extras: list[Extra]
    photo: bytes | None
    notes: list[str]
    warnings: list[str]


class CardReader:
    """Turns the properties of one card into contact data, extras, photo and notes."""

    def __init__(self, props: list[Prop], version: str, context: ReadContext, warnings: list[str]) -> None:
        self.props = props
        self.version = version
        self.ctx = context
        self.warnings = warnings
        self.extras: list[Extra] = []
        self.labels: dict[str, str] = {}  # group -> X-ABLabel text
        for prop in props:
            if prop.group and prop.name == "X-ABLABEL":
                self.labels[prop.group] = unescape(prop.value)
        #: group -> anchor of the modelled property of that group
        self.anchors: dict[str, str] = {}

    def keep(self, prop: Prop) -> None:
        params = dict(prop.params)
        if prop.binary is not None:
            params["ENCODING"] = ["b"]
        self.extras.append(Extra(prop.name, prop.value, params, prop.group))

    def label(self, prop: Prop) -> str | None:
        text = self.labels.get(prop.group or "")
        if text is None:
            return None
        match = APPLE_LABEL.match(text)
        return fold(match.group(1) if match else text)

    def anchor(self, prop: Prop, key: str) -> None:
        if prop.group:
            self.anchors.setdefault(prop.group, key)

    def read(self) -> CardResult:
        by_name: dict[str, list[Prop]] = {}
        for prop in self.props:
            by_name.setdefault(prop.name, []).append(prop)
        first = {name: props[0] for name, props in by_name.items()}
        data: dict[str, Any] = {}
        handled = {"N", "FN", "ORG", "TITLE", "BDAY", "EMAIL", "TEL", "ADR", "URL", "NOTE", "CATEGORIES"}
        handled |= {"PHOTO", "X-ABLABEL", "X-ABSHOWAS", "X-SOCIALPROFILE"}

        names = structured(first["N"].value) if "N" in first else []
        formatted = unescape(first["FN"].value).strip() if "FN" in first else ""
        org = structured(first["ORG"].value) if "ORG" in first else []
        org_name = _component(org, 0)
        kind_prop = first.get("KIND")
        is_org = (
            kind_prop is not None and unescape(kind_prop.value).strip().lower() in ("org", "organization")
        ) or ("X-ABSHOWAS" in first and unescape(first["X-ABSHOWAS"].value).strip().upper() == "COMPANY")
        if not is_org and not any(names[:2] if names else []) and org_name and formatted in ("", org_name):
            is_org = True
        data["kind"] = "organization" if is_org else "person"

        if is_org:
            data["name"] = org_name or formatted
        else:
            last, given = _component(names, 0), _component(names, 1)
            additional = _component(names, 2)
            first_name = " ".join(p for p in (given, additional) if p)
            if not last and not first_name and formatted:
                pieces = formatted.rsplit(" ", 1)
                first_name, last = (pieces[0], pieces[1]) if len(pieces) == 2 else ("", pieces[0])
            if not last and first_name:
                last, first_name = first_name, ""
            data["first_name"] = first_name or None
            data["last_name"] = last or None
            prefix = _component(names, 3)
            if prefix:
                key = self.ctx.salutations.get(fold(prefix).rstrip("."))
                if key:
                    data["salutation"] = key
                else:
                    self.warnings.append(f"salutation {prefix!r} is not in the salutation list; left out")
            if org_name:
                # The importer finds the organization contact of that name, or creates it, and links it.
                data["organization"] = org_name[:300]
            department = " / ".join(part for part in (_component(org, i) for i in range(1, len(org))) if part)
            if department:
                data["department"] = department[:200]
        if "TITLE" in first:
            data["job_title"] = unescape(first["TITLE"].value).strip()[:200] or None
        for prop in by_name.get("TITLE", [])[1:]:
            self.keep(prop)

        self._birthday(by_name.get("BDAY", []), data)
        data["emails"] = self._emails(by_name.get("EMAIL", []))
        data["addresses"] = self._addresses(by_name.get("ADR", []))
        country = next((a["country"] for a in data["addresses"] if a.get("country")), None)
        if country:
            data["country"] = country
        data["phones"] = self._phones(by_name.get("TEL", []), country or self.ctx.default_country)
        self._urls(by_name.get("URL", []), by_name.get("X-SOCIALPROFILE", []), data)
        tags: list[str] = []
        for prop in by_name.get("CATEGORIES", []):
            for item in split_unescaped(prop.value, ","):
                tag = unescape(item).strip()
                if not tag:
                    continue
                if len(tag) > 80:
                    self.warnings.append(
                        f"line {prop.line}: category {tag[:40]!r}... is longer than 80 characters; left out"
                    )
                elif fold(tag) not in {fold(t) for t in tags}:
                    tags.append(tag)
        if tags:
            data["tags"] = tags
        notes = []
        for prop in by_name.get("NOTE", []):
            text = unescape(prop.value).strip()
            if len(text) > MAX_NOTE:
                self.warnings.append(f"line {prop.line}: note cut to {MAX_NOTE} characters")
                text = text[:MAX_NOTE]
            if text:
                notes.append(text)
        photo = self._photo(by_name.get("PHOTO", []))

        custom: dict[str, Any] = {}
        for prop in self.props:
            if prop.name in handled or prop.name in DROPPED or prop.name in ("N", "FN"):
                continue
            if prop.name.startswith("X-CRM-"):
                key = prop.name[6:].lower().replace("-", "_")
                field_def = self.ctx.fields.get(key)
                if field_def is not None and data["kind"] in field_def.kinds:
                    try:
                        custom[key] = clean_value(field_def, unescape(prop.value))
                        continue
                    except ValueError as exc:
                        self.warnings.append(
                            f"line {prop.line}: {prop.name}: {exc}; kept in the vCard data only"
                        )
            if prop.name.startswith("X-") or prop.name in KEPT:
                self.keep(prop)
        if custom:
            data["custom"] = custom

        # Labels and other grouped extras stay with the modelled property of their group.
        for prop in self.props:
            if prop.group and prop.name == "X-ABLABEL":
                self.keep(prop)
        for extra in self.extras:
            if extra.group:
                extra.anchor = self.anchors.get(extra.group)

        if data["kind"] == "person" and not data.get("last_name"):
            fallback = next(
                (e["address"] for e in data["emails"]), next((p["number"] for p in data["phones"]), None)
            )
            if fallback is None:
                raise Unreadable("the card has no name (N, FN or ORG), email or phone to file it under")
            data["last_name"] = fallback
            self.warnings.append(f"the card has no name; filed under {fallback}")
        return CardResult(
            {k: v for k, v in data.items() if v not in (None, [], {})},
            self.extras,
            photo,
            notes,
            self.warnings,
        )

    def _birthday(self, props: list[Prop], data: dict[str, Any]) -> None:
        for index, prop in enumerate(props):
            day = parse_birthday(unescape(prop.value)) if index == 0 else None
            if day is not None and day <= dt.date.today():
                data["birthday"] = day.isoformat()
            else:
                self.keep(prop)  # no year (--0415), a time only, or a second one: kept as written

    def _emails(self, props: list[Prop]) -> list[dict[str, Any]]:
        emails: list[dict[str, Any]] = []
        ranks: list[int | None] = []
        for prop in props:
            address = unescape(prop.value).strip()
            if address.lower().startswith("mailto:"):
                address = address[7:]
            if not address:
                continue
            if len(address) > 254 or not EMAIL_RE.match(address):
                self.warnings.append(
                    f"line {prop.line}: {address[:80]!r} is not an email address; kept in the vCard data only"
                )
                self.keep(prop)
                continue
            if address.lower() in {e["address"].lower() for e in emails}:
                continue
            label = self.label(prop)
            types = prop.types
            if label in ("home", "work", "other"):
                kind = label
            elif label:
                kind = "other"
            elif "home" in types:
                kind = "home"
            elif "work" in types:
                kind = "work"
            else:
                kind = "other"
            emails.append({"address": address, "label": kind})
            ranks.append(_pref_rank(prop))
            self.anchor(prop, "EMAIL:" + address.lower())
        preferred = [(rank, index) for index, rank in enumerate(ranks) if rank is not None]
        if preferred:
            emails[min(preferred)[1]]["primary"] = True
        return emails

    def _phone_type(self, prop: Prop) -> str:
        types = prop.types
        known = self.ctx.phone_types
        label = self.label(prop)
        if label:
            key = self.ctx.phone_labels.get(label.rstrip("."))
            if key:
                return key
            if "mobile" in label or "cell" in label or "iphone" in label:
                return "mobile" if "mobile" in known else next(iter(known))
        candidates = []
        if "fax" in types:
            candidates.append("fax")
        if types & {"cell", "mobile", "iphone"}:
            candidates.append("mobile")
        candidates += [t for t in sorted(types) if t not in ("voice", "pref", "fax", "cell")]
        candidates += [t[2:] for t in sorted(types) if t.startswith("x-")]
        for candidate in candidates:
            if candidate in known:
                return candidate
        return "work" if "work" in known else next(iter(known))

    def _phones(self, props: list[Prop], region: str | None) -> list[dict[str, Any]]:
        phones: list[dict[str, Any]] = []
        seen: set[str] = set()
        for prop in props:
            number = unescape(prop.value).strip()
            if number.lower().startswith("tel:"):
                number = number[4:]
            number = re.sub(r";ext=", " ext. ", number, flags=re.IGNORECASE)
            if not number:
                continue
            try:
                e164 = to_e164(number, region)
            except InvalidPhone as exc:
                self.warnings.append(f"line {prop.line}: {exc}; kept as typed in the vCard data only")
                self.keep(prop)
                continue
            if e164 in seen:
                self.keep(prop)  # the same number under another type: kept as written
                continue
            if len(number) > 60:
                self.warnings.append(
                    f"line {prop.line}: phone number longer than 60 characters; kept in the vCard data only"
                )
                self.keep(prop)
                continue
            seen.add(e164)
            phones.append({"number": number, "type": self._phone_type(prop)})
            self.anchor(prop, "TEL:" + e164)
        return phones

    def _addresses(self, props: list[Prop]) -> list[dict[str, Any]]:
        addresses: list[dict[str, Any]] = []
        for prop in props:
            parts = structured(prop.value)
            street_parts = parts[2] if len(parts) > 2 else []
            # Only the street may span lines; any other part is flattened onto one line.
            parts = [[" ".join(item.split()) for item in part] for part in parts]
            box, extended = _component(parts, 0, ", "), _component(parts, 1, ", ")
            street_lines = [line.strip() for line in "\n".join(street_parts).split("\n")]
            street_lines = [line for line in street_lines if line]
            lines = [line for line in (*street_lines, extended, box) if line]
            street = lines[0] if lines else None
            street2 = ", ".join(lines[1:]) or None
            country_text = _component(parts, 6, ", ")
            country = country_code(country_text) if country_text else None
            if country_text and country is None:
                self.warnings.append(
                    f"line {prop.line}: country {country_text!r} not recognised; address kept without it"
                )
            label = self.label(prop)
            types = prop.types
            if label in ("billing", "shipping", "other"):
                kind = label
            elif label == "home":
                kind = "personal"
            elif label == "work":
                kind = "main"
            elif label:
                kind = "other"
            elif types & {"x-billing", "billing"}:
                kind = "billing"
            elif types & {"x-shipping", "shipping", "parcel"}:
                kind = "shipping"
            elif types & {"x-other", "other"}:
                kind = "other"
            elif "home" in types:
                kind = "personal"
            else:
                kind = "main"
            address = {
                "kind": kind,
                "street": street,
                "street2": street2,
                "postal_code": _component(parts, 5, " ") or None,
                "city": _component(parts, 3, " ") or None,
                "region": _component(parts, 4, " ") or None,
                "country": country,
            }
            for part, limit in (
                ("street", 300),
                ("street2", 300),
                ("postal_code", 20),
                ("city", 120),
                ("region", 120),
            ):
                if address[part] and len(address[part]) > limit:
                    self.warnings.append(f"line {prop.line}: address {part} cut to {limit} characters")
                    address[part] = address[part][:limit]
            if not any(address[p] for p in ("street", "street2", "postal_code", "city", "region", "country")):
                continue
            addresses.append(address)
            self.anchor(prop, "ADR:" + address_key(address))
        return addresses

    def _urls(self, urls: list[Prop], profiles: list[Prop], data: dict[str, Any]) -> None:
        social: dict[str, str] = {}
        for prop in profiles:
            url = unescape(prop.value).strip()
            network = next(iter(sorted(prop.types - {"pref"})), None) or _social_network(url)
            if (
                network
                and re.match(r"^[a-z][a-z0-9_]{0,29}$", network)
                and network not in social
                and len(url) <= 500
            ):
                social[network] = url
            else:
                self.keep(prop)
        for prop in urls:
            url = unescape(prop.value).strip()
            if not url:
                continue
            network = _social_network(url)
            if network and network not in social and len(url) <= 500:
                social[network] = url
            elif "website" not in data and len(url) <= 500 and " " not in url:
                data["website"] = url
                self.anchor(prop, "URL:website")
            else:
                self.keep(prop)
        if social:
            data["social"] = social

    def _photo(self, props: list[Prop]) -> bytes | None:
        from crmcore.services.photos import normalise_image

        photo = None
        for prop in props:
            data = prop.binary
            value = unescape(prop.value).strip() if data is None else ""
            if data is None and value.lower().startswith("data:"):
                header, _, payload = value.partition(",")
                if ";base64" not in header.lower():
                    self.warnings.append(f"line {prop.line}: PHOTO data URI is not base64; left out")
                    continue
                try:
                    data = base64.b64decode(re.sub(r"\s+", "", payload), validate=True)
                except (binascii.Error, ValueError) as exc:
                    self.warnings.append(f"line {prop.line}: PHOTO has invalid base64 data ({exc}); left out")
                    continue
            if data is None:
                self.keep(prop)  # a link to an image: never fetched, kept for re-export
                continue
            if photo is not None:
                continue
            try:
                normalise_image(data)
            except ValidationError:
                self.warnings.append(f"line {prop.line}: PHOTO is not an image Pillow can read; left out")
                continue
            photo = data
        return photo


def _social_network(url: str) -> str | None:
    match = re.match(r"^(?:https?://)?(?:www\.)?([^/]+)", url.strip().lower())
    return SOCIAL_DOMAINS.get(match.group(1)) if match else None


def address_key(address: Any) -> str:
    get = address.get if isinstance(address, dict) else lambda name: getattr(address, name)
    return "|".join(
        fold(get(part) or "") for part in ("street", "street2", "postal_code", "city", "country")
    )[:390]


# -- reading: the public function -------------------------------------------------------------------


def _version_of(lines: list[tuple[int, bytes]]) -> str:
    for _number, line in lines:
        match = re.match(rb"^\s*VERSION\s*:\s*([0-9.]+)", line, re.IGNORECASE)
        if match:
            return match.group(1).decode("ascii")
    return "3.0"


def read_card(raw: RawCard, context: ReadContext) -> CardResult:
    """One raw card -> its contact data; raises :class:`Unreadable`."""
    warnings = list(raw.warnings)
    version = _version_of(raw.lines)
    if version not in ("2.1", "3.0", "4.0"):
        warnings.append(f"unknown vCard version {version}; read as 3.0")
        version = "3.0"
    props: list[Prop] = []
    for number, line in logical_lines(raw):
        head = _header(line).upper().strip()
        if head == b"PROFILE":
            warnings.append(f"line {number}: PROFILE:VCard is a second start marker; ignored")
            continue
        try:
            props.append(parse_property(number, line, version))
        except ValueError as exc:
            warnings.append(f"{exc}; left out")
    if not props:
        raise Unreadable("the card is empty")
    result = CardReader(props, version, context, warnings).read()
    result.warnings.sort(key=_line_of)  # in file order (stable: card-wide warnings first)
    return result


def _line_of(warning: str) -> int:
    match = re.match(r"line (\d+)", warning)
    return int(match.group(1)) if match else 0


def read_cards(stream: IO[bytes]) -> Iterator[ImportRecord]:
    """Read every card of a vCard file (2.1, 3.0, 4.0, mixed): one :class:`ImportRecord` per card."""
    context = ReadContext()
    for raw in split_cards(stream):
        try:
            result = read_card(raw, context)
        except Unreadable as exc:
            yield ImportRecord(raw.position, error=f"card starting line {raw.first_line}: {exc}")
            continue
        except Exception as exc:  # a reader bug must not lose the other cards
            yield ImportRecord(
                raw.position,
                error=f"card starting line {raw.first_line}: unreadable ({type(exc).__name__}: {exc})",
            )
            continue
        yield ImportRecord(
            raw.position,
            data=result.data,
            # Nothing to keep beyond the contact itself: no after_save, so the importer may insert in bulk.
            after_save=_after_save(result) if result.extras or result.photo or result.notes else None,
            warnings=result.warnings,
        )


def _after_save(result: CardResult) -> Callable[[Contact], None]:
    def store(contact: Contact) -> None:
        from crmcore.auth import request_user
        from crmcore.services.notes import add_notes, check_note
        from crmcore.services.photos import set_photo

        user = request_user()
        replace_extras(contact.id, result.extras)
        if result.photo is not None:
            set_photo(contact.id, result.photo, user, "import")
        if result.notes:
            # A card imported again (update) must not repeat its notes.
            existing = set(
                db.session.scalars(
                    select(Note.body).where(Note.contact_id == contact.id, Note.kind == "customer")
                )
            )
            bodies = list(dict.fromkeys(check_note(body, "customer") for body in result.notes))
            new = [(contact, body) for body in bodies if body not in existing]
            add_notes(new, "customer", user, "import")

    return store


# -- writing ----------------------------------------------------------------------------------------


def _line(
    card: Any, name: str, value: str, params: dict[str, list[str]] | None = None, group: str | None = None
) -> Any:
    """Add a property whose ``value`` is already escaped (vobject's escaping is for single text values)."""
    line = card.add(name.lower(), group)
    # Set after ``add``: adding a line runs vobject's text decoding, which keeps only the part before
    # the first comma and doubles unknown escapes. Without a behaviour, vobject writes the value as it is
    # and folds every line at 75 octets (its PHOTO behaviour would leave photos unfolded).
    line.behavior = None
    line.value = value
    line.encoded = True
    for key, values in (params or {}).items():
        line.params[key.upper()] = list(values)
    return line


def _types(version: str, values: list[str], preferred: bool = False) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    values = [v for v in values if v]
    if version == "4.0":
        if values:
            params["TYPE"] = [v.lower() for v in values]
        if preferred:
            params["PREF"] = ["1"]
    else:
        if preferred:
            values = [*values, "pref"]
        if values:
            params["TYPE"] = [v.upper() if v != "pref" else v for v in values]
    return params


def _salutation_labels() -> dict[str, str]:
    language = current_app.config.get("DEFAULT_LANGUAGE", "en")
    return {v.key: (v.label_fr if language == "fr" else v.label_en) for v in lookups.values("salutation")}


def _custom_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(escape(str(item)) for item in value)
    return escape(str(value))


def _quoted_printable(text: str, used: int) -> str:
    """UTF-8 quoted-printable as vCard 2.1 writers do it: line breaks as =0D=0A, soft breaks so no line
    (``used`` octets already taken by the name and parameters) exceeds 76 octets."""
    encoded = []
    for byte in text.replace("\r\n", "\n").replace("\n", "\r\n").encode():
        encoded.append(chr(byte) if (33 <= byte <= 126 and byte != 61) or byte == 32 else f"={byte:02X}")
    lines, current, size = [], "", used
    for token in encoded:
        if size + len(token) > 75:
            lines.append(current + "=")
            current, size = "", 0
        if not current and token == " ":
            token = "=20"  # a line starting with a space would read as a folded line
        current += token
        size += len(token)
    if current.endswith(" "):
        current = current[:-1] + "=20"  # trailing spaces would be stripped in transit
    lines.append(current)
    return "\r\n".join(lines)


def _render_21(card: Any) -> str:
    """vCard 2.1 from the card built for 3.0: bare TYPE parameters (``TEL;CELL;PREF``), values unescaped
    (only ``;`` inside a structured part is escaped), quoted-printable UTF-8 for anything not short
    plain ASCII, and the photo as a base64 block ended by a blank line."""
    out = ["BEGIN:VCARD", "VERSION:2.1"]
    for child in card.getSortedChildren():
        if child.name == "VERSION":
            continue
        params = []
        for key, values in sorted(child.params.items()):
            if key == "TYPE":
                params += [v.upper() for v in values]
            elif key not in ("ENCODING", "CHARSET"):
                params += [f"{key}={v}" for v in values]
        head = (f"{child.group}." if child.group else "") + child.name + "".join(f";{p}" for p in params)
        value = child.value
        if child.params.get("ENCODING"):
            out.append(f"{head};ENCODING=BASE64:")
            out += [" " + value[i : i + 72] for i in range(0, len(value), 72)]
            out.append("")
            continue
        if child.name in ("N", "ADR", "ORG"):
            text = ";".join(unescape(part).replace(";", "\\;") for part in split_unescaped(value, ";"))
        elif child.name == "CATEGORIES":
            text = ",".join(unescape(part) for part in split_unescaped(value, ","))
        else:
            text = unescape(value)
        if text.isascii() and "\n" not in text and len(head) + len(text) < 75:
            out.append(f"{head}:{text}")
        else:
            head += ";CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE"
            out.append(f"{head}:{_quoted_printable(text, len(head) + 1)}")
    out.append("END:VCARD")
    return "\r\n".join(out) + "\r\n"


def _fold_long_lines(text: str) -> str:
    """Fold the lines vobject left longer than 75 octets: it counts characters, not UTF-8 octets, so a
    line of fewer than 75 accented characters is written whole however many octets it takes."""
    if all(len(line.encode()) <= 75 for line in text.split("\r\n")):
        return text
    out = []
    for line in text.split("\r\n"):
        pieces, current, size = [], "", 0
        for char in line:
            width = len(char.encode())
            if size + width > 75:
                pieces.append(current)
                current, size = " ", 1
            current += char
            size += width
        pieces.append(current)
        out.append("\r\n".join(pieces))
    return "\r\n".join(out)


class _OrderedVCard(vobject.vcard.VCard3_0):
    """vobject's vCard behaviour, writing the identity first (vobject sorts the rest by name)."""

    sortFirst = ("version", "kind", "x-abshowas", "fn", "n", "org", "title")


class CardWriter:
    def __init__(self, version: str) -> None:
        if version not in VERSIONS:
            raise ValidationError({"version": [f"must be one of: {', '.join(VERSIONS)}"]})
        self.version = version
        self.salutations = _salutation_labels()
        self.phone_types = {value.key for value in lookups.values("phone_type")}

    def write(
        self,
        contact: Contact,
        extras: list[Any],
        photo: ContactPhoto | None,
        notes: list[str],
        organization: str | None,
    ) -> str:
        v4 = self.version == "4.0"
        card = vobject.vCard()
        card.setBehavior(_OrderedVCard)
        _line(card, "VERSION", self.version)
        custom = dict(contact.custom or {})
        if contact.kind == "organization":
            _line(card, "FN", escape(contact.name or contact.display_name))
            _line(card, "N", ";;;;")
            if v4:
                _line(card, "KIND", "org")
            else:
                _line(card, "X-ABSHOWAS", "COMPANY")
            _line(card, "ORG", escape(contact.name or ""))
        else:
            prefix = self.salutations.get(contact.salutation or "", "")
            fn = " ".join(p for p in (prefix, contact.first_name, contact.last_name) if p)
            _line(card, "FN", escape(fn or contact.display_name))
            _line(
                card,
                "N",
                ";".join(escape(p or "") for p in (contact.last_name, contact.first_name, "", prefix, "")),
            )
            org_name = organization
            if org_name is None:
                stored = next((e for e in extras if e.name == "ORG" and not e.group), None)
                org_name = unescape(split_unescaped(stored.value, ";")[0]) if stored else None
            if org_name or contact.department:
                value = escape(org_name or "")
                if contact.department:
                    value += ";" + escape(contact.department)
                _line(card, "ORG", value)
        if contact.job_title:
            _line(card, "TITLE", escape(contact.job_title))
        if contact.birthday:
            basic = self.version != "3.0"  # 4.0 and 2.1 write 19850412, 3.0 1985-04-12
            _line(
                card, "BDAY", contact.birthday.strftime("%Y%m%d") if basic else contact.birthday.isoformat()
            )

        anchored: dict[str, Any] = {}
        for email in contact.emails:
            label = email.label if email.label in ("home", "work") else None
            if v4:
                params = _types(self.version, [label] if label else [], email.primary)
            else:
                params = _types(self.version, ["INTERNET", label or ""], email.primary)
            anchored["EMAIL:" + email.address.lower()] = _line(card, "EMAIL", escape(email.address), params)
        for phone in contact.phones:
            anchored["TEL:" + phone.e164] = _line(
                card, "TEL", escape(phone.number), self._tel_params(phone.type)
            )
        for address in contact.addresses:
            street = "\n".join(p for p in (address.street, address.street2) if p)
            country = ""
            if address.country:
                country = countries().get(address.country, address.country)
            value = ";".join(
                escape(p or "")
                for p in ("", "", street, address.city, address.region, address.postal_code, country)
            )
            kind = ADDRESS_TYPES.get(address.kind, "X-OTHER")
            anchored["ADR:" + address_key(address)] = _line(card, "ADR", value, _types(self.version, [kind]))
        if contact.website:
            anchored["URL:website"] = _line(card, "URL", escape(contact.website))
        for network, url in sorted((contact.social or {}).items()):
            _line(card, "X-SOCIALPROFILE", escape(url), {"TYPE": [network]})
        if contact.tags:
            _line(card, "CATEGORIES", ",".join(escape(tag.name) for tag in contact.tags))
        for body in notes:
            _line(card, "NOTE", escape(body))
        for key, value in sorted(custom.items()):
            if value in (None, "", []):
                continue
            _line(card, "X-CRM-" + key.upper().replace("_", "-"), _custom_text(value))
        if photo is not None:
            subtype = photo.content_type.split("/")[-1].upper()
            if v4:
                encoded = base64.b64encode(photo.data).decode("ascii")
                _line(card, "PHOTO", f"data:{photo.content_type};base64,{encoded}")
            else:
                encoded = base64.b64encode(photo.data).decode("ascii")
                _line(card, "PHOTO", encoded, {"ENCODING": ["b"], "TYPE": [subtype]})
        self._extras(card, extras, anchored, custom)
        if self.version == "2.1":
            return _render_21(card)
        return _fold_long_lines(card.serialize())

    def _tel_params(self, phone_type: str) -> dict[str, list[str]]:
        mapping = {
            "mobile": ["cell", "voice"],
            "work": ["work", "voice"],
            "home": ["home", "voice"],
            "fax": ["fax"],
        }
        if phone_type in mapping:
            values = mapping[phone_type]
        elif phone_type in STANDARD_TEL_TYPES:
            values = [phone_type]
        else:
            values = ["x-" + phone_type.replace("_", "-")]
        return _types(self.version, values)

    def _extras(self, card: Any, extras: list[Any], anchored: dict[str, Any], custom: dict[str, Any]) -> None:
        groups: dict[str, str] = {}
        counter = 0

        def group_name(original: str) -> str:
            nonlocal counter
            if original not in groups:
                counter += 1
                groups[original] = f"item{counter}"
            return groups[original]

        for extra in extras:
            if extra.name == "ORG" and not extra.group:
                continue  # written above as the ORG line
            if extra.name.startswith("X-CRM-") and extra.name[6:].lower().replace("-", "_") in custom:
                continue  # the stored custom value wins over the value kept from the card
            if extra.name in ("VERSION", "FN", "N", "KIND"):
                continue
            group = None
            if extra.group:
                if extra.anchor:
                    target = anchored.get(extra.anchor)
                    if target is None:
                        continue  # the labelled email/phone/address was removed: its label goes too
                    group = group_name(extra.group)
                    target.group = group
                else:
                    group = group_name(extra.group)
            _line(card, extra.name, extra.value, self._params(extra.params or {}), group)

    def _params(self, params: dict[str, list[str]]) -> dict[str, list[str]]:
        """A kept property's parameters in this version's syntax (PREF=1 in 4.0, TYPE=pref in 3.0)."""
        out = {key: list(values) for key, values in params.items() if key not in ("CHARSET", "PREF")}
        types = [t for t in out.pop("TYPE", []) if t]
        preferred = "pref" in {t.lower() for t in types} or "PREF" in params
        types = [t for t in types if t.lower() != "pref"]
        if self.version == "4.0" and out.get("ENCODING"):
            out.pop("ENCODING")  # base64 kept values are X- properties: written as text
        return {**out, **_types(self.version, types, preferred)}


def write_cards(contacts: Iterable[Contact], version: str = "3.0") -> Iterator[str]:
    """Yield each contact as one vCard (CRLF line ends), in ``version`` 3.0 (default), 4.0 or 2.1."""
    writer = CardWriter(version)
    batch: list[Contact] = []
    for contact in contacts:
        batch.append(contact)
        if len(batch) == 100:
            yield from _write_batch(writer, batch)
            batch = []
    if batch:
        yield from _write_batch(writer, batch)


def _write_batch(writer: CardWriter, contacts: list[Contact]) -> Iterator[str]:
    ids = [contact.id for contact in contacts]
    # Loaded again for the whole batch with one query per relationship (instead of four lazy loads per
    # contact); this also copes with callers that page through contacts and clear the session.
    loaded = {c.id: c for c in db.session.scalars(select(Contact).where(Contact.id.in_(ids)).options(*EAGER))}
    contacts = [loaded[contact_id] for contact_id in ids if contact_id in loaded]
    extras = extras_of(ids)
    photos = {
        photo.contact_id: photo
        for photo in db.session.scalars(select(ContactPhoto).where(ContactPhoto.contact_id.in_(ids)))
    }
    notes: dict[int, list[str]] = {contact_id: [] for contact_id in ids}
    for contact_id, body in db.session.execute(
        select(Note.contact_id, Note.body)
        .where(Note.contact_id.in_(ids), Note.kind == "customer")
        .order_by(Note.created_at, Note.id)
    ):
        notes[contact_id].append(body)
    organization_ids = {c.organization_id for c in contacts if c.organization_id}
    organizations = (
        dict(
            db.session.execute(select(Contact.id, Contact.name).where(Contact.id.in_(organization_ids))).all()
        )
        if organization_ids
        else {}
    )
    for contact in contacts:
        yield writer.write(
            contact,
            extras[contact.id],
            photos.get(contact.id),
            notes[contact.id],
            organizations.get(contact.organization_id) if contact.organization_id else None,
        )

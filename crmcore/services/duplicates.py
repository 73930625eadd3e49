"""Duplicate detection: over the whole base (``find_duplicates``) and while creating (``check_duplicates``).

How it works
------------
1. Every contact becomes a :class:`Profile`: folded names, normalised emails, E.164 phones,
   normalised addresses, birthday, organization.
2. **Blocking**: each profile gets a few keys (see :func:`blocking_keys`: an email, a phone,
   "last name + first initial" in both name orders, the birthday, "postcode + street number",
   "street + number"...). Only profiles sharing a key are compared. A key shared by more than
   ``max_block`` profiles (a very common name) is not compared all-against-all: its profiles are
   sorted by name and each is compared with its ``window`` neighbours on either side (sorted
   neighbourhood). The number of comparisons therefore grows linearly with the base, never as n².
3. **Scoring**: each signal adds or removes evidence (in bits, as in the Fellegi-Sunter model):
   a shared email or phone weighs a lot, a name similarity (rapidfuzz Jaro-Winkler on folded
   text, with swapped first/last names, initials and typos) a fair amount, a different birthday
   or street number counts against. Two people with the same last name and other first names
   are taken for relatives: what a household shares (address, phone) cannot make them one on
   its own. The evidence becomes a score between 0 and 1 (a logistic curve: 12 bits, say a same
   name and a same postcode, make 0.8); every signal that counted is listed in ``reasons``.

Quality (``benchmarks/bench_duplicates.py``): on FEBRL 1 and 2, precision 1.00 and recall 0.97 at
the default threshold; the published recordlinkage recipe reaches recall 0.60.

Thresholds come from the configuration: ``CRM_DUPLICATE_THRESHOLD`` (pairs listed by the scan),
``CRM_DUPLICATE_CHECK_THRESHOLD`` (candidates shown while creating), ``CRM_DUPLICATE_MAX_BLOCK``
and ``CRM_DUPLICATE_WINDOW`` (blocking), ``CRM_DUPLICATE_CHECK_LIMIT`` (candidates returned).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from flask import current_app
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein
from sqlalchemy import delete, func, intersect, or_, select
from sqlalchemy.exc import IntegrityError

from crmcore.config import ConfigError
from crmcore.errors import NotFound, ValidationError
from crmcore.extensions import db
from crmcore.models import (
    Contact,
    ContactAddress,
    ContactEmail,
    ContactPhone,
    DuplicateDismissal,
    SearchToken,
    User,
)
from crmcore.services import access
from crmcore.services.phones import InvalidPhone, to_e164
from crmcore.services.text import fold
from crmcore.services.transactions import savepoint, transaction

# -- settings --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DuplicateSettings:
    #: Pairs scoring at least this are reported by the scan (``crm duplicates``, ``GET /duplicates``).
    threshold: float = 0.8
    #: Candidates scoring at least this are shown while creating a contact (``/duplicates/check``).
    check_threshold: float = 0.35
    #: A blocking key shared by more profiles than this is scanned by sorted neighbourhood.
    max_block: int = 12
    #: How many neighbours each profile is compared with inside an oversized block.
    window: int = 8
    #: At most this many candidates are returned by a check.
    check_limit: int = 10


_SETTINGS = {
    "threshold": ("DUPLICATE_THRESHOLD", float),
    "check_threshold": ("DUPLICATE_CHECK_THRESHOLD", float),
    "max_block": ("DUPLICATE_MAX_BLOCK", int),
    "window": ("DUPLICATE_WINDOW", int),
    "check_limit": ("DUPLICATE_CHECK_LIMIT", int),
}


def settings_from_config(config: Mapping[str, Any] | None = None) -> DuplicateSettings:
    """Read ``CRM_DUPLICATE_*`` (environment values arrive as strings); ConfigError names a bad one."""
    config = current_app.config if config is None else config
    values: dict[str, Any] = {}
    for attr, (key, kind) in _SETTINGS.items():
        raw = config.get(key)
        if raw is None or raw == "":
            continue
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            raise ConfigError(
                f"CRM_{key}: expected a{'n integer' if kind is int else ' number'}, got {raw!r}"
            ) from None
        if kind is float and not 0.0 <= value <= 1.0:
            raise ConfigError(f"CRM_{key}: must be between 0 and 1, got {raw!r}")
        if kind is int and value < 1:
            raise ConfigError(f"CRM_{key}: must be at least 1, got {raw!r}")
        values[attr] = value
    return DuplicateSettings(**values)


# -- normalisation ---------------------------------------------------------------------------------

#: Mail providers that ignore dots in the local part and where ``googlemail.com`` is ``gmail.com``.
_DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def normalise_email(address: str | None) -> str:
    """``" Jean.Dupont+news@GoogleMail.com "`` -> ``"jeandupont@gmail.com"``.

    Lowercase, sub-address (``+tag``) removed; for Gmail, dots removed too. Empty when unusable.
    """
    text = (address or "").strip().lower()
    if text.count("@") != 1:
        return ""
    local, domain = text.split("@")
    domain = domain.rstrip(".")
    local = local.split("+", 1)[0]
    if domain in _DOTLESS_DOMAINS:
        domain = _DOTLESS_DOMAINS[domain]
        local = local.replace(".", "")
    if not local or not domain:
        return ""
    return f"{local}@{domain}"


def normalise_phone(number: str | None, region: str | None) -> str:
    """The E.164 form of ``number`` (``region`` for national numbers); empty when it is not a phone."""
    if not number:
        return ""
    try:
        return to_e164(str(number), region)
    except InvalidPhone:
        return ""


_LEGAL_FORMS = {
    "sa", "sas", "sasu", "sarl", "eurl", "sci", "snc", "scop", "selarl", "ste", "societe", "cie",
    "inc", "incorporated", "ltd", "limited", "llc", "llp", "plc", "corp", "corporation", "co", "company",
    "gmbh", "ag", "kg", "bv", "nv", "srl", "spa", "ab", "oy", "as", "group", "groupe", "the", "et", "and",
}  # fmt: skip
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def normalise_org_name(name: str | None) -> str:
    """Folded organization name without punctuation and legal forms: "ACME S.A.R.L." -> "acme"."""
    text = fold(name).replace(".", "")
    words = [w for w in _NON_WORD.split(text) if w and w not in _LEGAL_FORMS]
    return " ".join(words)


@lru_cache(maxsize=65536)
def _name(text: str | None) -> str:
    """Folded name or place, punctuation as spaces: "Jean-Pierre" -> "jean pierre" (names repeat: cached)."""
    return " ".join(w for w in _NON_WORD.split(fold(text)) if w)


_STREET_WORDS = {
    "st": "street", "str": "street", "rd": "road", "ave": "avenue", "av": "avenue", "bd": "boulevard",
    "bld": "boulevard", "blvd": "boulevard", "dr": "drive", "pl": "place", "cres": "crescent",
    "ct": "court", "ln": "lane", "hwy": "highway", "pde": "parade", "cct": "circuit", "tce": "terrace",
    "sq": "square", "imp": "impasse", "che": "chemin", "rte": "route", "fg": "faubourg", "bis": "",
    "ter": "", "apt": "", "appt": "",
}  # fmt: skip
_NUMBER = re.compile(r"^(\d+)\s*([a-z]?)\b")


def _squash(text: str) -> str:
    return text.replace(" ", "")


@dataclass(slots=True)
class Address:
    """An address as compared: number, street name, second line, postcode, city (all folded)."""

    number: str
    street: str
    extra: str
    postcode: str
    city: str
    # Without spaces, derived once for every comparison.
    street_sq: str = field(init=False, default="")
    extra_sq: str = field(init=False, default="")
    city_sq: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.street_sq = _squash(self.street)
        self.extra_sq = _squash(self.extra)
        self.city_sq = _squash(self.city)

    @property
    def is_empty(self) -> bool:
        return not (self.number or self.street or self.extra or self.postcode or self.city)


def normalise_address(
    street: str | None, street2: str | None, postal_code: str | None, city: str | None
) -> Address:
    number, line = _street(street)
    postcode = "".join(fold(postal_code).split()).upper() if postal_code else ""
    return Address(number, line, _name(street2), postcode, _name(city))


@lru_cache(maxsize=65536)
def _street(street: str | None) -> tuple[str, str]:
    """``"12, Rue de la Paix"`` -> ``("12", "rue de la paix")``: number and street name, abbreviations spelt out."""
    words = [_STREET_WORDS.get(w, w) for w in _NON_WORD.split(fold(street)) if w]
    line = " ".join(w for w in words if w)
    number = ""
    match = _NUMBER.match(line)
    if match:
        number = match.group(1).lstrip("0") or "0"
        line = line[match.end() :].strip()
    return number, line


# -- profiles --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Profile:
    """What duplicate detection knows of one contact (or of a draft being typed)."""

    id: int | None
    kind: str = "person"
    first: str = ""
    last: str = ""
    org: str = ""
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    addresses: list[Address] = field(default_factory=list)
    birthday: dt.date | None = None
    organization_id: int | None = None
    # Derived once, used by every comparison.
    first_sq: str = field(init=False, default="")
    last_sq: str = field(init=False, default="")
    birthday_digits: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.first_sq = _squash(self.first)
        self.last_sq = _squash(self.last)
        self.birthday_digits = self.birthday.strftime("%Y%m%d") if self.birthday else ""

    @property
    def sort_key(self) -> str:
        if self.kind == "organization":
            return self.org
        return f"{self.last} {self.first}".strip()

    @property
    def is_blank(self) -> bool:
        return not (
            self.first or self.last or self.org or self.emails or self.phones or self.birthday
        ) and all(a.is_empty for a in self.addresses)


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        return None


def _items(value: Any, key: str) -> list[Any]:
    """A list of dicts (API shape) or of plain strings -> the ``key`` values."""
    if value is None:
        return []
    if isinstance(value, (str, Mapping)):
        value = [value]
    out = []
    for item in value:
        out.append(item.get(key) if isinstance(item, Mapping) else item)
    return [v for v in out if v]


def profile_from_data(data: Mapping[str, Any], region: str | None = None) -> Profile:
    """A profile from a (possibly partial) contact in the API's JSON shape, as typed in a form.

    Also accepts the flat form of the check endpoint: ``email``, ``phone``, ``street``,
    ``postal_code`` and ``city``. Unusable values (a malformed phone) are ignored.
    """
    kind = data.get("kind") or (
        "organization" if data.get("name") and not data.get("last_name") else "person"
    )
    region = (data.get("country") or region or "").upper() or None
    emails = {
        normalise_email(e) for e in _items(data.get("emails"), "address") + _items(data.get("email"), "")
    }
    phones = {
        normalise_phone(p, region)
        for p in _items(data.get("phones"), "number") + _items(data.get("phone"), "")
    }
    addresses = []
    for item in data.get("addresses") or []:
        if isinstance(item, Mapping):
            addresses.append(
                normalise_address(
                    item.get("street"), item.get("street2"), item.get("postal_code"), item.get("city")
                )
            )
    if any(data.get(k) for k in ("street", "postal_code", "city")):
        addresses.append(
            normalise_address(
                data.get("street"), data.get("street2"), data.get("postal_code"), data.get("city")
            )
        )
    organization_id = data.get("organization_id")
    return Profile(
        id=data.get("id") if isinstance(data.get("id"), int) else None,
        kind=kind if kind in ("person", "organization") else "person",
        first=_name(data.get("first_name")) if kind == "person" else "",
        last=_name(data.get("last_name")) if kind == "person" else "",
        org=normalise_org_name(data.get("name")) if kind == "organization" else "",
        emails={e for e in emails if e},
        phones={p for p in phones if p},
        addresses=[a for a in addresses if not a.is_empty],
        birthday=_as_date(data.get("birthday")),
        organization_id=organization_id if isinstance(organization_id, int) else None,
    )


# -- blocking --------------------------------------------------------------------------------------


def blocking_keys(p: Profile) -> set[str]:
    """The keys under which ``p`` is filed; two profiles are compared only if they share one.

    An email, a phone, "last name + first initial" (filed in both name orders, so swapped names
    meet), the birthday, "postcode + street number", "street + number" and "street start + postcode";
    for organizations the name, its longest word and its first letters.
    """
    keys = {f"e:{e}" for e in p.emails} | {f"p:{n}" for n in p.phones}
    if p.kind == "organization":
        words = p.org.split()
        if words:
            squashed = _squash(p.org)
            keys.add(f"o:{squashed}")
            keys.add(f"o1:{max(words, key=len)}")
            keys.add(f"o3:{squashed[:4]}")
    else:
        first, last = p.first_sq, p.last_sq
        if last:
            keys.add(f"n:{last}|{first[:1]}")
        if first:
            keys.add(f"n:{first}|{last[:1]}")
        if p.birthday:
            keys.add(f"b:{p.birthday_digits}")
    for a in p.addresses:
        if a.postcode and a.number:
            keys.add(f"a:{a.postcode}|{a.number}")
        if a.street:
            street = _squash(a.street)
            keys.add(f"s:{street}|{a.number}|{a.city_sq[:1]}")
            if a.postcode:
                keys.add(f"sp:{street[:5]}|{a.postcode}")
    return keys


def candidate_pairs(profiles: Sequence[Profile], settings: DuplicateSettings) -> Iterator[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of profiles sharing a blocking key, each pair once.

    A block of at most ``max_block`` profiles is compared all against all. A bigger one (a very
    common name, a birthday shared by many) is sorted by name and each profile is paired with its
    ``window`` neighbours on either side: the work stays linear in the number of profiles.
    """
    keys_of = [blocking_keys(p) for p in profiles]
    blocks: dict[str, list[int]] = defaultdict(list)
    for index, keys in enumerate(keys_of):
        for key in keys:
            blocks[key].append(index)
    positions: dict[str, dict[int, int]] = {}
    for key, members in blocks.items():
        if len(members) > settings.max_block:
            ordered = sorted(members, key=lambda k: (profiles[k].sort_key, k))
            blocks[key] = ordered
            positions[key] = {member: position for position, member in enumerate(ordered)}
    window = settings.window
    for i, keys in enumerate(keys_of):
        partners: set[int] = set()
        for key in keys:
            members = blocks[key]
            if len(members) < 2:
                continue
            position = positions.get(key)
            if position is None:
                partners.update(j for j in members if j > i)  # members are in index order
            else:
                at = position[i]
                partners.update(j for j in members[max(0, at - window) : at + window + 1] if j > i)
        for j in sorted(partners):
            yield i, j


# -- scoring ---------------------------------------------------------------------------------------

#: Evidence (bits) that makes the score 0.5.
PRIOR_BITS = 9.0
#: How fast the score rises with evidence: 12 bits (a same name and a same postcode, say) make 0.8.
SLOPE = 0.462
#: Evidence that a household or a company shares (phone, address, organization) counts at most this
#: much for two people with the same last name and clearly different first names: relatives, colleagues.
HOUSEHOLD_CAP = 8.0

_LAST = (6.0, 4.5, 2.0, -1.0, -4.0)
_FIRST = (5.0, 3.5, 1.0, -2.0, -6.0)
_ORG = (9.0, 6.0, 2.0, -2.0, -6.0)


@dataclass(frozen=True, slots=True)
class Match:
    score: float
    reasons: tuple[str, ...]
    bits: float


def _level(sim: float, weights: tuple[float, float, float, float, float]) -> float:
    """Evidence for a similarity: exact, >=0.92, >=0.85, >=0.75, below."""
    if sim >= 0.98:
        return weights[0]
    if sim >= 0.92:
        return weights[1]
    if sim >= 0.85:
        return weights[2]
    if sim >= 0.75:
        return weights[3]
    return weights[4]


def _part_sim(x: str, y: str, sx: str, sy: str) -> tuple[float, bool]:
    """Similarity of two folded name parts (``sx``, ``sy``: without spaces), and whether one is an initial."""
    if sx == sy:
        return 1.0, False
    if len(sx) == 1 or len(sy) == 1:
        return (0.9, True) if sx[0] == sy[0] else (0.0, False)
    sim = JaroWinkler.normalized_similarity(sx, sy)
    if " " in x or " " in y:
        # "jean pierre" / "jean": one holds every word of the other.
        partial = fuzz.token_set_ratio(x, y) / 100.0
        if partial >= 0.999:
            return max(sim, 0.93), False
        sim = max(sim, partial * 0.95)
    return sim, False


def _orientation(
    af: str, al: str, afs: str, als: str, bf: str, bl: str, bfs: str, bls: str
) -> tuple[float, float | None, float | None, bool, bool]:
    """Evidence of one pairing of name parts: ``(bits, last sim, first sim, last initial, first initial)``."""
    bits = 0.0
    last_sim = first_sim = None
    last_initial = first_initial = False
    if als and bls:
        last_sim, last_initial = _part_sim(al, bl, als, bls)
        bits += _level(last_sim, _LAST)
    if afs and bfs:
        first_sim, first_initial = _part_sim(af, bf, afs, bfs)
        bits += 2.0 if first_initial else _level(first_sim, _FIRST)
    return bits, last_sim, first_sim, last_initial, first_initial


def _may_be_swapped(a: Profile, b: Profile) -> bool:
    """Worth comparing first with last names: an initial in common across (cheap test, most pairs fail it)."""
    if not ((a.first and a.last) or (b.first and b.last)):
        return False
    return bool(
        (a.first_sq and b.last_sq and a.first_sq[0] == b.last_sq[0])
        or (a.last_sq and b.first_sq and a.last_sq[0] == b.first_sq[0])
    )


def _names(a: Profile, b: Profile, reasons: list[str] | None) -> tuple[float, bool]:
    """Name evidence and whether the two look like relatives (same last name, other first name)."""
    best = _orientation(a.first, a.last, a.first_sq, a.last_sq, b.first, b.last, b.first_sq, b.last_sq)
    swapped = False
    # Swapped first/last names; also a lone name typed in the wrong box ("Martin" as first name).
    if best[0] < 9.0 and _may_be_swapped(a, b):
        other = _orientation(a.first, a.last, a.first_sq, a.last_sq, b.last, b.first, b.last_sq, b.first_sq)
        if other[0] > best[0]:
            best, swapped = other, True
    bits, last_sim, first_sim, last_initial, first_initial = best
    if last_sim is None and first_sim is None:
        return 0.0, False
    both_swapped = swapped and a.first and a.last and b.first and b.last
    if both_swapped:
        bits -= 0.5
    relatives = last_sim is not None and last_sim >= 0.92 and first_sim is not None and first_sim < 0.75
    if reasons is not None:
        sims = [(s, w) for s, w in ((last_sim, 0.6), (first_sim, 0.4)) if s is not None]
        similarity = sum(s * w for s, w in sims) / sum(w for _, w in sims)
        reasons.append("same name" if similarity >= 0.995 else f"name similarity {similarity:.2f}")
        if both_swapped:
            reasons.append("first and last names swapped")
        if last_initial:
            reasons.append(f"last name initial {a.last[0].upper()}.")
        if first_initial:
            reasons.append(f"first name initial {a.first[0].upper()}.")
    return bits, relatives


def _digits_close(x: str, y: str) -> bool:
    """One digit changed, or two neighbours swapped ("2061" / "2016")."""
    return len(x) == len(y) and OSA.distance(x, y, score_cutoff=1) <= 1


def _birthdays(a: Profile, b: Profile, reasons: list[str] | None) -> float:
    assert a.birthday is not None and b.birthday is not None
    if a.birthday == b.birthday:
        if reasons is not None:
            reasons.append(f"same birthday {a.birthday.isoformat()}")
        return 9.0
    sa, sb = a.birthday_digits, b.birthday_digits
    if _digits_close(sa, sb) or (sa[:4] == sb[:4] and sa[4:6] == sb[6:8] and sa[6:8] == sb[4:6]):
        if reasons is not None:
            reasons.append(f"close birthdays {a.birthday.isoformat()} / {b.birthday.isoformat()}")
        return 3.0
    if sa[:4] == sb[:4] and Levenshtein.distance(sa, sb, score_cutoff=2) <= 2:
        return 0.0
    if reasons is not None:
        reasons.append(f"different birthdays {a.birthday.isoformat()} / {b.birthday.isoformat()}")
    return -5.0


def _text_sim(x: str, y: str, sx: str | None = None, sy: str | None = None) -> float:
    """Similarity of two folded texts, blind to spacing and word order (0 below 0.7)."""
    sx = _squash(x) if sx is None else sx
    sy = _squash(y) if sy is None else sy
    if sx == sy:
        return 1.0
    ratio = fuzz.ratio(sx, sy, score_cutoff=70)
    if ratio >= 90.0 or (" " not in x and " " not in y):
        return ratio / 100.0
    return max(ratio, fuzz.token_sort_ratio(x, y, score_cutoff=70)) / 100.0


def _address(a: Address, b: Address) -> tuple[float, float | None]:
    """Evidence of two addresses, and the street similarity (None when a street is missing)."""
    bits = 0.0
    if a.postcode and b.postcode:
        if a.postcode == b.postcode:
            bits += 4.0
        elif _digits_close(a.postcode, b.postcode):
            bits += 1.5
        else:
            bits -= 2.0
    street_sim = None
    # Second lines are sometimes typed as the first: compare across too.
    for x, y, sx, sy in (
        (a.street, b.street, a.street_sq, b.street_sq),
        (a.street, b.extra, a.street_sq, b.extra_sq),
        (a.extra, b.street, a.extra_sq, b.street_sq),
    ):
        if x and y:
            sim = _text_sim(x, y, sx, sy)
            street_sim = sim if street_sim is None else max(street_sim, sim)
            if sim == 1.0:
                break
    if street_sim is not None:
        if street_sim >= 0.9:
            bits += 4.0
        elif street_sim >= 0.8:
            bits += 2.0
        else:
            bits -= 2.0
    if a.number and b.number:
        if a.number == b.number:
            bits += 2.0 if street_sim is None or street_sim >= 0.8 else 0.5
        elif _digits_close(a.number, b.number) or a.number in b.number or b.number in a.number:
            bits -= 0.5
        else:
            bits -= 2.5
    if a.extra and b.extra and a.street and b.street:
        bits += 1.5 if _text_sim(a.extra, b.extra, a.extra_sq, b.extra_sq) >= 0.9 else -0.5
    if a.city and b.city:
        bits += 1.5 if _same_city(a, b) else -1.0
    return bits, street_sim


def _same_city(a: Address, b: Address) -> bool:
    return a.city_sq == b.city_sq or fuzz.ratio(a.city_sq, b.city_sq, score_cutoff=85) > 0


def _address_reasons(a: Address, b: Address, street_sim: float | None, reasons: list[str]) -> None:
    if a.postcode and a.postcode == b.postcode:
        reasons.append(f"same postcode {a.postcode}")
    if street_sim is not None and street_sim >= 0.8:
        if a.number and a.number == b.number:
            reasons.append(f"address similarity {street_sim:.2f}, same number {a.number}")
        else:
            reasons.append(f"address similarity {street_sim:.2f}")
    if a.city and b.city and not (a.postcode and a.postcode == b.postcode) and _same_city(a, b):
        reasons.append(f"same city {a.city}")


def _threshold_bits(score: float) -> float:
    """The evidence that makes ``score`` (the inverse of :func:`_to_score`)."""
    if score <= 0.0:
        return -math.inf
    if score >= 1.0:
        return math.inf
    return PRIOR_BITS + math.log(score / (1.0 - score)) / SLOPE


def _to_score(bits: float) -> float:
    return round(1.0 / (1.0 + math.exp(-SLOPE * (bits - PRIOR_BITS))), 3)


def compare(a: Profile, b: Profile, min_score: float = 0.0) -> Match | None:
    """Score two profiles; None when they cannot be the same (a person and an organization).

    Reasons are written only for pairs scoring at least ``min_score`` (the scan skips them for
    the many pairs it drops).
    """
    if a.kind != b.kind:
        return None
    bits = _evidence(a, b, None)
    score = _to_score(bits)
    if score < min_score:
        return Match(score, (), bits)
    reasons: list[str] = []
    _evidence(a, b, reasons)
    return Match(score, tuple(reasons), bits)


def _evidence(a: Profile, b: Profile, reasons: list[str] | None) -> float:
    """Total evidence (bits) that ``a`` and ``b`` are one contact; appends the reasons when asked."""
    bits = 0.0
    household = 0.0
    shared_emails = a.emails & b.emails if a.emails and b.emails else None
    if shared_emails:
        bits += 12.0
        if reasons is not None:
            reasons.append(f"same email {min(shared_emails)}")
    elif shared_emails is not None:
        bits -= 1.0
    shared_phones = a.phones & b.phones if a.phones and b.phones else None
    if shared_phones:
        household += 10.0
        if reasons is not None:
            reasons.append(f"same phone {min(shared_phones)}")
    elif shared_phones is not None:
        household -= 1.0
    relatives = False
    if a.kind == "organization":
        if a.org and b.org:
            sim = _text_sim(a.org, b.org)
            if sim < 0.98:
                sim = max(sim, fuzz.token_set_ratio(a.org, b.org) / 100.0 * 0.95)
            bits += _level(sim, _ORG)
            if reasons is not None:
                reasons.append("same name" if sim >= 0.995 else f"name similarity {sim:.2f}")
    else:
        name_bits, relatives = _names(a, b, reasons)
        bits += name_bits
        if a.birthday and b.birthday:
            birthday_bits = _birthdays(a, b, reasons)
            bits += birthday_bits
            relatives = relatives and birthday_bits <= 0
        relatives = relatives and not shared_emails
        if a.organization_id and b.organization_id:
            if a.organization_id == b.organization_id:
                household += 1.5
                if reasons is not None:
                    reasons.append("same organization")
            else:
                household -= 1.0
    if a.addresses and b.addresses:
        best: tuple[float, float | None, Address, Address] | None = None
        for x in a.addresses:
            for y in b.addresses:
                address_bits, street_sim = _address(x, y)
                if best is None or address_bits > best[0]:
                    best = (address_bits, street_sim, x, y)
        assert best is not None
        household += best[0]
        if reasons is not None:
            _address_reasons(best[2], best[3], best[1], reasons)
    if relatives and household > HOUSEHOLD_CAP:
        household = HOUSEHOLD_CAP
        if reasons is not None:
            reasons.append("different first names: relatives or colleagues?")
    return bits + household


@dataclass(frozen=True)
class DuplicatePair:
    """Two contacts that may be the same: ``a < b`` are contact ids."""

    a: int
    b: int
    score: float
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "score": self.score, "reasons": list(self.reasons)}


def find_pairs(
    profiles: Sequence[Profile],
    settings: DuplicateSettings,
    threshold: float | None = None,
    dismissed: Collection[tuple[int, int]] = (),
) -> list[DuplicatePair]:
    """Every pair of ``profiles`` (which must have ids) scoring at least ``threshold``, best first.

    ``dismissed`` holds pairs ``(lower id, higher id)`` marked "not a duplicate": never returned.
    """
    threshold = settings.threshold if threshold is None else threshold
    # Most candidate pairs are dropped: compare their evidence with the threshold's, write no reasons.
    floor = _threshold_bits(threshold) - 0.01
    found = []
    for i, j in candidate_pairs(profiles, settings):
        a, b = profiles[i], profiles[j]
        if a.kind != b.kind or _evidence(a, b, None) < floor:
            continue
        assert a.id is not None and b.id is not None
        key = (a.id, b.id) if a.id < b.id else (b.id, a.id)
        if dismissed and key in dismissed:
            continue
        match = compare(a, b)
        assert match is not None
        if match.score >= threshold:
            found.append(DuplicatePair(key[0], key[1], match.score, match.reasons))
    found.sort(key=lambda p: (-p.score, p.a, p.b))
    return found


# -- reading the database --------------------------------------------------------------------------


def _region() -> str | None:
    return current_app.config.get("DEFAULT_COUNTRY")


def load_profiles(user: User | None = None, ids: Iterable[int] | None = None) -> list[Profile]:
    """Profiles of the (not deleted) contacts ``user`` may read, or of ``ids`` among them.

    Plain column queries, one per table: about a second for 100,000 contacts.
    """
    wanted = None if ids is None else sorted(set(ids))
    if wanted is not None and not wanted:
        return []
    visible = [Contact.deleted_at.is_(None), access.visible_filter(user)]
    if wanted is not None:
        visible.append(Contact.id.in_(wanted))
    rows = db.session.execute(
        select(
            Contact.id,
            Contact.kind,
            Contact.first_name,
            Contact.last_name,
            Contact.name,
            Contact.birthday,
            Contact.organization_id,
            Contact.country,
        )
        .where(*visible)
        .order_by(Contact.id)
    )
    profiles: dict[int, Profile] = {}
    regions: dict[int, str | None] = {}
    for cid, kind, first, last, name, birthday, organization_id, country in rows:
        person = kind == "person"
        profiles[cid] = Profile(
            id=cid,
            kind=kind,
            first=_name(first) if person else "",
            last=_name(last) if person else "",
            org="" if person else normalise_org_name(name),
            birthday=birthday,
            organization_id=organization_id,
        )
        regions[cid] = country
    if not profiles:
        return []

    def children(*columns: Any) -> Any:
        table = columns[0].class_
        query = select(*columns).join(Contact, Contact.id == table.contact_id).where(*visible)
        return db.session.execute(query)

    for cid, address in children(ContactEmail.contact_id, ContactEmail.address_key):
        email = normalise_email(address)
        if email and cid in profiles:
            profiles[cid].emails.add(email)
    for cid, e164 in children(ContactPhone.contact_id, ContactPhone.e164):
        if e164 and cid in profiles:
            profiles[cid].phones.add(e164)
    for cid, street, street2, postal_code, city in children(
        ContactAddress.contact_id,
        ContactAddress.street,
        ContactAddress.street2,
        ContactAddress.postal_code,
        ContactAddress.city,
    ):
        if cid in profiles:
            address = normalise_address(street, street2, postal_code, city)
            if not address.is_empty:
                profiles[cid].addresses.append(address)
    return list(profiles.values())


def find_duplicates(
    user: User | None = None,
    threshold: float | None = None,
    limit: int | None = None,
    exclude_dismissed: bool = True,
) -> list[DuplicatePair]:
    """Pairs of contacts ``user`` may read that look like the same person or organization, best first.

    What the "Check duplicates" page, ``crm duplicates`` and ``GET /api/v1/duplicates`` show. Pairs
    marked "not a duplicate" (:func:`dismiss_pair`) are left out, unless ``exclude_dismissed`` is false
    (the page keeps such a scan and leaves them out at each display, see :func:`without_dismissed`).
    """
    settings = settings_from_config()
    dismissed = dismissed_pairs() if exclude_dismissed else frozenset()
    pairs = find_pairs(load_profiles(user), settings, threshold, dismissed)
    return pairs[:limit] if limit else pairs


@dataclass(frozen=True)
class Candidate:
    """A stored contact that may be the one being typed."""

    contact: Contact
    score: float
    reasons: tuple[str, ...]


#: Rows fetched per signal by a check: enough to find the match, bounded whatever the base size.
CHECK_FETCH = 200


def _token_is(word: str) -> Any:
    return select(SearchToken.contact_id).where(SearchToken.token == word)


def _token_starts(prefix: str) -> Any:
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return select(SearchToken.contact_id).where(SearchToken.token >= prefix, SearchToken.token < upper)


def _candidate_ids(p: Profile, typed_emails: Iterable[str], exclude_id: int | None) -> set[int]:
    """Contact ids sharing something with ``p``: an indexed query per signal, each bounded.

    Names use the search tokens (folded words, in any order): both names exactly, the last name's
    first letters with the exact first name (a typo further on), or the exact last name with the
    first name's initial. A common name alone would return thousands: each query stops at
    :data:`CHECK_FETCH` rows.
    """
    queries: list[Any] = []
    keys = set(p.emails) | {e.strip().lower() for e in typed_emails if e}
    if keys:
        queries.append(select(ContactEmail.contact_id).where(ContactEmail.address_key.in_(sorted(keys))))
        dotless = [e for e in p.emails if e.endswith("@gmail.com")]
        if dotless:  # stored keys keep Gmail's dots: look for the same start
            queries.append(
                select(ContactEmail.contact_id)
                .where(ContactEmail.domain.in_(["gmail.com", "googlemail.com"]))
                .where(or_(*[ContactEmail.address_key.startswith(e.split("@")[0][:3]) for e in dotless]))
            )
    if p.phones:
        queries.append(select(ContactPhone.contact_id).where(ContactPhone.e164.in_(sorted(p.phones))))
    if p.kind == "person":
        lasts = [w for w in p.last.split() if len(w) > 1]
        firsts = [w for w in p.first.split() if len(w) > 1]
        initial = p.first_sq[:1]
        for last in lasts:
            last_start = _token_starts(last[:3]) if len(last) > 3 else _token_is(last)
            for first in firsts:
                queries.append(intersect(_token_is(last), _token_is(first)))
                queries.append(intersect(last_start, _token_is(first)))
            if initial:
                queries.append(intersect(_token_is(last), _token_starts(initial)))
                queries.append(intersect(last_start, _token_starts(initial)))  # typos in both
            else:
                queries.append(_token_is(last))
        if not lasts:
            queries.extend(_token_is(first) for first in firsts)
        if p.birthday:
            queries.append(select(Contact.id).where(Contact.birthday == p.birthday))
    else:
        queries.extend(_token_is(word) for word in p.org.split() if len(word) > 1)
    postcodes = sorted({a.postcode for a in p.addresses if a.postcode})
    if postcodes:
        queries.append(select(ContactAddress.contact_id).where(ContactAddress.postal_code.in_(postcodes)))
    ids: set[int] = set()
    for query in queries:
        ids.update(db.session.scalars(query.limit(CHECK_FETCH)))
    ids.discard(exclude_id)  # type: ignore[arg-type]
    return ids


def check_duplicates(
    data: Mapping[str, Any],
    user: User | None = None,
    exclude_id: int | None = None,
    threshold: float | None = None,
    limit: int | None = None,
) -> list[Candidate]:
    """Stored contacts that may be the one described by ``data`` (a draft in the API shape), best first.

    The creation form calls this to say "there is already a contact with this name". Only
    contacts ``user`` may read are returned; ``exclude_id`` leaves out the contact being edited, and
    the contacts marked "not a duplicate" of it.
    """
    from crmcore.services.contacts import EAGER

    settings = settings_from_config()
    threshold = settings.check_threshold if threshold is None else threshold
    limit = limit or settings.check_limit
    draft = profile_from_data(data, _region())
    if draft.is_blank:
        return []
    typed = _items(data.get("emails"), "address") + _items(data.get("email"), "")
    ids = _candidate_ids(draft, [str(e) for e in typed], exclude_id)
    if exclude_id is not None and ids:
        ids -= dismissed_partners(exclude_id)  # the contact being edited "is not" these
    scored = []
    for profile in load_profiles(user, ids):
        match = compare(draft, profile, threshold)
        if match is not None and match.score >= threshold:
            scored.append((match, profile.id))
    scored.sort(key=lambda item: (-item[0].score, item[1]))
    scored = scored[:limit]
    if not scored:
        return []
    contacts = {
        c.id: c
        for c in db.session.scalars(
            select(Contact).where(Contact.id.in_([i for _, i in scored])).options(*EAGER)
        )
    }
    return [Candidate(contacts[cid], match.score, match.reasons) for match, cid in scored if cid in contacts]


def contacts_of(pairs: Iterable[DuplicatePair]) -> dict[int, Contact]:
    """The contacts of ``pairs`` by id, loaded at once (for a page listing the pairs with names)."""
    from crmcore.services.contacts import EAGER

    ids = sorted({i for pair in pairs for i in (pair.a, pair.b)})
    if not ids:
        return {}
    return {c.id: c for c in db.session.scalars(select(Contact).where(Contact.id.in_(ids)).options(*EAGER))}


# -- "not a duplicate" -------------------------------------------------------------------------------
#
# A user may say that a listed pair is two different contacts: the pair is stored once, as (lower id,
# higher id), and the scan, the API, the CLI and the check while typing never propose it again, until
# someone removes the marker. Markers are shared by every user (a pair is a fact about the contacts).
# A merge leaves them alone: a contact merged away is soft-deleted, so its markers stop mattering (and
# are not listed); undoing the merge brings the contact back with its markers as they were. A contact
# deleted for good takes its markers with it (foreign keys, ON DELETE CASCADE).


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31


def _pair_contacts(a: Any, b: Any, user: User | None, include_deleted: bool) -> tuple[Contact, Contact]:
    """The two contacts of a pair, each readable by ``user``: 422 for a malformed pair, 404 otherwise."""
    from crmcore.services.contacts import get_contact

    errors: dict[str, list[str]] = {}
    for name, value in (("a", a), ("b", b)):
        if not _is_id(value):
            errors[name] = ["must be a contact id"]
    if not errors and a == b:
        errors["b"] = ["is the same contact as a: a pair needs two contacts"]
    if errors:
        raise ValidationError(errors)
    contacts = []
    for name, value in (("a", a), ("b", b)):
        try:
            contacts.append(get_contact(value, user, "read", include_deleted=include_deleted))
        except NotFound:
            raise NotFound(f"contact {value} not found", field=name) from None
    return contacts[0], contacts[1]


def _key(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def dismiss_pair(a: Any, b: Any, user: User | None = None) -> tuple[DuplicateDismissal, bool]:
    """Mark contacts ``a`` and ``b`` "not a duplicate"; returns the marker and whether it is new.

    ``user`` must be able to read both (NotFound otherwise, naming ``a`` or ``b``). Marking a pair
    twice keeps the first marker (its author and date).
    """
    with transaction():
        first, second = _pair_contacts(a, b, user, include_deleted=False)
        key = _key(first.id, second.id)
        existing = db.session.get(DuplicateDismissal, key)
        if existing is not None:
            return existing, False
        row = DuplicateDismissal(contact_a_id=key[0], contact_b_id=key[1], user_id=user.id if user else None)
        try:
            with savepoint():
                db.session.add(row)
                db.session.flush()
        except IntegrityError:  # marked by someone else meanwhile: theirs stands
            existing = db.session.get(DuplicateDismissal, key, populate_existing=True)
            if existing is None:
                raise
            return existing, False
    return row, True


def undismiss(a: Any, b: Any, user: User | None = None) -> None:
    """Remove the "not a duplicate" marker of ``a`` and ``b``: the pair may be proposed again.

    NotFound when ``user`` may not read one of them, or when the pair carries no marker.
    """
    with transaction():
        first, second = _pair_contacts(a, b, user, include_deleted=True)
        key = _key(first.id, second.id)
        removed = db.session.execute(
            delete(DuplicateDismissal).where(
                DuplicateDismissal.contact_a_id == key[0], DuplicateDismissal.contact_b_id == key[1]
            )
        )
        if not removed.rowcount:
            raise NotFound(f"contacts {key[0]} and {key[1]} are not marked as not duplicates")


def _listed(user: User | None) -> Any:
    """Markers whose two contacts exist, are not deleted (or merged away) and are readable by ``user``."""
    shown = select(Contact.id).where(Contact.deleted_at.is_(None), access.visible_filter(user))
    return (
        DuplicateDismissal.contact_a_id.in_(shown),
        DuplicateDismissal.contact_b_id.in_(shown),
    )


def list_dismissed(
    user: User | None = None, limit: int | None = None, offset: int = 0
) -> list[DuplicateDismissal]:
    """The pairs marked "not a duplicate" that ``user`` may read both contacts of, newest first."""
    query = (
        select(DuplicateDismissal)
        .where(*_listed(user))
        .order_by(
            DuplicateDismissal.created_at.desc(),
            DuplicateDismissal.contact_a_id,
            DuplicateDismissal.contact_b_id,
        )
        .offset(offset)
    )
    if limit:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def count_dismissed(user: User | None = None) -> int:
    return db.session.scalar(select(func.count()).select_from(DuplicateDismissal).where(*_listed(user))) or 0


def dismissed_pairs() -> frozenset[tuple[int, int]]:
    """Every marked pair ``(lower id, higher id)``: one query, what the scan leaves out."""
    rows = db.session.execute(select(DuplicateDismissal.contact_a_id, DuplicateDismissal.contact_b_id))
    return frozenset((a, b) for a, b in rows)


def dismissed_partners(contact_id: int) -> set[int]:
    """The contacts marked "not a duplicate" of ``contact_id`` (two indexed queries)."""
    partners = set(
        db.session.scalars(
            select(DuplicateDismissal.contact_b_id).where(DuplicateDismissal.contact_a_id == contact_id)
        )
    )
    partners.update(
        db.session.scalars(
            select(DuplicateDismissal.contact_a_id).where(DuplicateDismissal.contact_b_id == contact_id)
        )
    )
    return partners


def without_dismissed(
    pairs: Iterable[DuplicatePair], dismissed: Collection[tuple[int, int]] | None = None
) -> list[DuplicatePair]:
    """``pairs`` less those marked "not a duplicate" (read now, with one query, unless given)."""
    dismissed = dismissed_pairs() if dismissed is None else dismissed
    return [p for p in pairs if (p.a, p.b) not in dismissed] if dismissed else list(pairs)


def dismissal_to_dict(row: DuplicateDismissal) -> dict[str, Any]:
    return {
        "a": row.contact_a_id,
        "b": row.contact_b_id,
        "user_id": row.user_id,
        "created_at": row.created_at.isoformat(),
    }

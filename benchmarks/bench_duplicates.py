"""Duplicate detection: quality on FEBRL and speed of a full scan on generated contacts.

    .venv/bin/python benchmarks/bench_duplicates.py                 # febrl1, febrl2, 100,000 generated
    .venv/bin/python benchmarks/bench_duplicates.py --generated 0   # FEBRL only
    .venv/bin/python benchmarks/bench_duplicates.py --database-url postgresql://postgres@127.0.0.1/crm_me

Each data set goes into a fresh database (temporary SQLite files by default; with --database-url,
that database's public schema is DROPPED and recreated: give it a database of your own).

* FEBRL (``shared/corpora/febrl``): every record is created through ``create_contact`` (``rec_id`` as
  ``external_id``), then ``find_duplicates()`` is timed and its pairs compared with the true pairs
  (records sharing the number N of ``rec-N-org`` / ``rec-N-dup-k``): precision, recall, F1.
* Generated: N contacts (names, emails, phones, addresses, birthdays, organizations; about 8% are
  corrupted copies of another) are bulk-inserted with SQL (the service would take minutes for
  100,000), then a full scan is timed, and one ``check_duplicates`` call (the creation form).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.febrl_corpus import FEBRL_DIRS, febrl_contact, read_febrl  # noqa: E402  (after sys.path)


def quality(found: set[tuple[int, int]], truth: set[tuple[int, int]]) -> tuple[float, float, float]:
    tp = len(found & truth)
    precision = tp / len(found) if found else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def pairs_of_groups(groups: dict[Any, list[int]]) -> set[tuple[int, int]]:
    return {(min(a, b), max(a, b)) for ids in groups.values() for a, b in itertools.combinations(ids, 2)}


class Database:
    """A fresh, migrated database for one data set."""

    def __init__(self, url: str | None, folder: str, name: str) -> None:
        self.url = url or "sqlite:///" + os.path.join(folder, f"{name}.sqlite")
        if url:
            engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
            with engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
            engine.dispose()
        from crmcore import create_app
        from crmcore.migrating import upgrade_all

        self.app = create_app({"DATABASE_URL": self.url, "SECRET_KEY": "bench", "PLUGINS": []})
        self.context = self.app.app_context()
        self.context.push()
        upgrade_all()

    def close(self) -> None:
        from crmcore.extensions import db

        db.session.remove()
        db.engine.dispose()
        self.context.pop()


def bench_febrl(path: Path, url: str | None, folder: str) -> None:
    from crmcore.extensions import db
    from crmcore.models import Contact
    from crmcore.services.contacts import create_contact
    from crmcore.services.duplicates import find_duplicates
    from crmcore.services.transactions import transaction

    rows = read_febrl(path)
    database = Database(url, folder, path.stem)
    try:
        started = time.perf_counter()
        with transaction():
            for row in rows:
                create_contact(febrl_contact(row), None, "import")
        imported = time.perf_counter() - started
        groups: dict[str, list[int]] = defaultdict(list)
        for contact_id, rec_id in db.session.execute(select(Contact.id, Contact.external_id)):
            groups[rec_id.split("-")[1]].append(contact_id)
        truth = pairs_of_groups(groups)
        started = time.perf_counter()
        pairs = find_duplicates()
        scanned = time.perf_counter() - started
        precision, recall, f1 = quality({(p.a, p.b) for p in pairs}, truth)
        print(
            f"{path.name}: {len(rows)} records, {len(truth)} true pairs, {len(pairs)} found | "
            f"precision {precision:.4f} recall {recall:.4f} F1 {f1:.4f} | "
            f"scan {scanned:.2f} s (import through the service {imported:.1f} s)"
        )
    finally:
        database.close()


# -- generated contacts ----------------------------------------------------------------------------

FIRST = (  # noqa: SIM905
    "jean marie pierre michel anne philippe nathalie alain isabelle sylvie catherine francoise "
    "jacques christine martine bernard patrick nicolas christophe stephane sophie frederic laurent "
    "valerie eric sandrine david julien celine olivier thomas camille nicole pascal emilie aurelie "
    "julie claire paul louis lucas hugo emma lea chloe manon ines sarah jade louise alice gabriel "
    "arthur raphael leo adam elodie mathilde margaux pauline lucie audrey helene caroline agnes "
    "brigitte daniel denis didier yves"
).split()
LAST = (  # noqa: SIM905
    "martin bernard thomas petit robert richard durand dubois moreau laurent simon michel lefebvre "
    "leroy roux david bertrand morel fournier girard bonnet dupont lambert fontaine rousseau "
    "vincent muller lefevre faure andre mercier blanc guerin boyer garnier chevalier francois "
    "legrand gauthier garcia perrin robin clement morin nicolas henry roussel mathieu gautier "
    "masson marchand duval denis dumont marie lemaire noel meyer dufour meunier brun blanchard "
    "giraud joly riviere lucas brunet gaillard barbier arnaud martinez gerard roche renard schmitt "
    "roy leroux colin vidal caron picard roger fabre aubert lemoine renaud dumas lacroix olivier "
    "philippe bourgeois pierre benoit rey leclerc payet rolland"
).split()
STREETS = (  # noqa: SIM905
    "rue de la paix|avenue victor hugo|boulevard voltaire|rue du moulin|chemin des vignes|"
    "rue de l eglise|place de la mairie|rue pasteur|allee des tilleuls|rue jean jaures|"
    "impasse des lilas|route de lyon|rue nationale|avenue de la gare|rue des ecoles|rue du chateau|"
    "rue principale|rue de la republique"
).split("|")
STREET_TYPES = ["rue", "avenue", "boulevard", "chemin", "impasse", "allee", "place", "route", "quai"]
DOMAINS = ["gmail.com", "orange.fr", "free.fr", "yahoo.fr", "laposte.net", "outlook.fr"]


SYLLABLES = (  # noqa: SIM905
    "ba be bi bo bu ca ce ci co da de di do du fa fe fi fo ga ge gi go la le li lo lu ma me mi mo mu "
    "na ne ni no pa pe pi po ra re ri ro ru sa se si so ta te ti to va ve vi vo an en in on ar er ir or "
    "el il ol al ch ou eau ier et ot ard aud ault elin ard bert mont val court ville mard lin nier"
).split()


def _invented(rng: random.Random, parts: tuple[int, int]) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(*parts)))


def _pick(rng: random.Random, common: list[str], share: float, parts: tuple[int, int]) -> str:
    """A common name (Zipf-like: the first ones most often, "martin" about 1.6%) or, with 1 - ``share``, a rarer invented one."""
    if rng.random() < share:
        return rng.choices(common, weights=[1 / (rank + 5) for rank in range(len(common))])[0]
    return _invented(rng, parts)


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 3:
        return word
    i = rng.randrange(1, len(word) - 1)
    choice = rng.randrange(3)
    if choice == 0:
        return word[:i] + word[i + 1 :]
    if choice == 1:
        return word[:i] + rng.choice("aeioulnrst") + word[i + 1 :]
    return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]


def generate(n: int, seed: int = 5) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    """``n`` contact rows (index = position) and the (original, copy) index pairs among them."""
    rng = random.Random(seed)
    people: list[dict[str, Any]] = []
    copies: list[tuple[int, int]] = []
    postcodes = [f"{rng.randrange(1, 96):02d}{rng.randrange(0, 1000):03d}" for _ in range(6000)]
    towns = {code: _invented(rng, (2, 4)) for code in postcodes}
    # Street names: a type and a name ("rue de la paix", "avenue dupont"), common ones in many towns.
    street_names = [f"{t} {n}" for t in STREET_TYPES for n in LAST[:40]] + STREETS
    while len(people) < n:
        if people and rng.random() < 0.08:
            source_index = rng.randrange(len(people))
            source = people[source_index]
            copy = {**source, "emails": list(source["emails"]), "phones": list(source["phones"])}
            mutation = rng.randrange(5)
            if mutation == 0:
                copy["last_name"] = _typo(rng, source["last_name"])
            elif mutation == 1:
                copy["first_name"], copy["last_name"] = source["last_name"], source["first_name"]
            elif mutation == 2:
                copy["first_name"] = source["first_name"][0].upper() + "."
                copy["emails"] = []
            elif mutation == 3:
                copy["phones"] = []
                copy["street"] = None
            else:
                copy["first_name"] = _typo(rng, source["first_name"])
                copy["emails"] = []
            copies.append((source_index, len(people)))
            people.append(copy)
            continue
        # As in a real base: frequent names take a good share, the long tail is wide.
        first, last = _pick(rng, FIRST, 0.7, (2, 3)), _pick(rng, LAST, 0.3, (2, 4))
        postcode = rng.choice(postcodes)
        birthday = (
            dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(25000)) if rng.random() < 0.4 else None
        )
        people.append(
            {
                "first_name": first.capitalize(),
                "last_name": last.upper() if rng.random() < 0.2 else last.capitalize(),
                "birthday": birthday,
                "emails": [f"{first}.{last}{rng.randrange(1000)}@{rng.choice(DOMAINS)}"]
                if rng.random() < 0.7
                else [],
                "phones": [f"+336{rng.randrange(10**8):08d}"] if rng.random() < 0.6 else [],
                "street": f"{rng.randrange(1, 200)} {rng.choice(street_names)}"
                if rng.random() < 0.6
                else None,
                "postal_code": postcode,
                "city": towns[postcode],
            }
        )
    return people, copies


def bench_generated(n: int, url: str | None, folder: str) -> None:
    from crmcore.extensions import db
    from crmcore.models import Contact, ContactAddress, ContactEmail, ContactPhone
    from crmcore.models.base import utcnow
    from crmcore.services.duplicates import check_duplicates, find_duplicates, load_profiles

    people, copies = generate(n)
    database = Database(url, folder, "generated")
    try:
        started = time.perf_counter()
        now = utcnow()
        contacts, emails, phones, addresses = [], [], [], []
        for index, p in enumerate(people, start=1):
            contacts.append(
                {
                    "id": index,
                    "number": f"G-{index:07d}",
                    "kind": "person",
                    "first_name": p["first_name"],
                    "last_name": p["last_name"],
                    "display_name": f"{p['first_name']} {p['last_name']}",
                    "sort_key": f"{p['last_name']} {p['first_name']}".lower(),
                    "birthday": p["birthday"],
                    "social": {},
                    "custom": {},
                    "status": "prospect",
                    "is_supplier": False,
                    "status_forced": False,
                    "visibility": "public_read",
                    "do_not_email": False,
                    "notify_owners": False,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            for address in p["emails"]:
                emails.append(
                    {
                        "contact_id": index,
                        "address": address,
                        "address_key": address.lower(),
                        "domain": address.split("@")[1],
                        "label": "home",
                        "primary": True,
                        "accepts_email": False,
                        "position": 0,
                    }
                )
            for number in p["phones"]:
                phones.append(
                    {
                        "contact_id": index,
                        "number": number,
                        "e164": number,
                        "type": "mobile",
                        "sms": False,
                        "whatsapp": False,
                        "viber": False,
                        "calls": False,
                        "position": 0,
                    }
                )
            addresses.append(
                {
                    "contact_id": index,
                    "kind": "main",
                    "street": p["street"],
                    "postal_code": p["postal_code"],
                    "city": p["city"],
                    "country": "FR",
                    "position": 0,
                }
            )
        for table, rows in (
            (Contact.__table__, contacts),
            (ContactEmail.__table__, emails),
            (ContactPhone.__table__, phones),
            (ContactAddress.__table__, addresses),
        ):
            for start in range(0, len(rows), 5000):
                db.session.execute(insert(table), rows[start : start + 5000])
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("SELECT setval('contacts_id_seq', (SELECT max(id) FROM contacts))"))
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        loaded = time.perf_counter() - started

        started, cpu = time.perf_counter(), time.process_time()
        read, read_cpu = len(load_profiles()), time.process_time() - cpu  # reading alone, for the record
        started, cpu = time.perf_counter(), time.process_time()
        pairs = find_duplicates()
        scanned, cpu = time.perf_counter() - started, time.process_time() - cpu
        truth: dict[int, list[int]] = defaultdict(list)
        root = {}
        for source, copy in copies:
            origin = root.get(source, source)
            root[copy] = origin
            truth[origin + 1].append(copy + 1)
        groups = {k: [k, *v] for k, v in truth.items()}
        precision, recall, f1 = quality({(p.a, p.b) for p in pairs}, pairs_of_groups(groups))
        print(
            f"generated: {n} contacts ({len(copies)} corrupted copies), {len(pairs)} pairs found | "
            f"full scan {scanned:.1f} s (CPU {cpu:.1f} s, of which reading the {read} contacts {read_cpu:.1f} s) "
            f"| precision {precision:.4f} recall {recall:.4f} F1 {f1:.4f} "
            f"(bulk load {loaded:.1f} s)"
        )
        sample = people[len(people) // 2]
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            found = check_duplicates(
                {
                    "first_name": sample["first_name"],
                    "last_name": sample["last_name"],
                    "email": sample["emails"],
                }
            )
            timings.append(time.perf_counter() - started)
        print(f"check while creating on {n} contacts: {min(timings) * 1000:.0f} ms ({len(found)} candidates)")
    finally:
        database.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None, help="PostgreSQL database of your own (emptied!)")
    parser.add_argument("--generated", type=int, default=100_000, help="generated contacts (0: skip)")
    parser.add_argument("--febrl", nargs="*", default=["febrl1.csv", "febrl2.csv"])
    args = parser.parse_args()
    folder = next((d for d in FEBRL_DIRS if d.exists()), None)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.febrl:
            if folder is None:
                print(f"{name}: FEBRL corpus not found in {', '.join(map(str, FEBRL_DIRS))}")
                continue
            bench_febrl(folder / name, args.database_url, tmp)
        if args.generated:
            bench_generated(args.generated, args.database_url, tmp)


if __name__ == "__main__":
    main()

"""Contacts at scale: list page, searches and creation rate on 100,000 generated contacts (SQLite).

    .venv/bin/python benchmarks/bench_contacts.py                     # 100,000 contacts, 10,000 timed creations
    .venv/bin/python benchmarks/bench_contacts.py --contacts 20000 --creations 2000   # a quicker look
    .venv/bin/python benchmarks/bench_contacts.py --profile creations # pyinstrument report of one part

How the database is filled (a fresh SQLite file in a temporary folder, every migration applied):

1. ``--contacts`` minus twice ``--creations`` contacts through the import path of the service layer:
   :func:`crmcore.services.contacts.prepare_contact` validates each one exactly as ``create_contact``
   does, then :func:`~crmcore.services.contacts.insert_contacts` writes 1,000 at a time (rows,
   history, search tokens) in one transaction;
2. ``--creations`` contacts through :func:`~crmcore.services.contacts.create_contacts`, 1,000 per call
   (what ``POST /api/v1/contacts/batch`` does): the creations/second figure of the target;
3. ``--creations`` contacts one by one through :func:`~crmcore.services.contacts.create_contact`,
   each in its own transaction as one ``POST /api/v1/contacts`` would (its own figure: a commit each).

Then each figure is the median of ``--repeat`` runs, in process, through the REST API (the Flask test
client with an API token, so authentication, the service, serialization and JSON are all counted):

* list page: ``GET /api/v1/contacts?sort=name&limit=50`` (first page, and a page deep in the list);
* search by name prefix (``q=mar``), by full email address, by phone digits (as typed, any format).

``--reader member`` reads as a user who is not an admin (the access filter is then in every query): one
contact in ten is private, half of those belong to the reader's team, the rest to nobody they know.

Targets: each median under 30 ms, more than 2,000 creations per second through the service layer. The script prints the
figures with OK / MISSED and exits 0 (benchmarks report; tests assert behaviour).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_MS = 30.0
TARGET_RATE = 2000.0


def words(text: str) -> list[str]:
    return text.split()


FIRST = words(
    "Marie Jean Pierre Michel Anne Philippe Nathalie Isabelle Alain Sylvie Nicolas Catherine Christophe "
    "Martine Stéphane Sandrine Éric Valérie Laurent Céline Julien Sophie Frédéric Aurélie David Hélène "
    "Olivier Chloé Thomas Élodie Maxime Léa Antoine Manon Hugo Camille Lucas Emma Louis Inès"
)
LAST = words(
    "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefèvre Michel "
    "Garcia David Bertrand Roux Vincent Fournier Morel Girard André Lefebvre Mercier Dupont Lambert Bonnet "
    "François Martinez Legrand Garnier Faure Rousseau Blanc Guérin Muller Henry Roussel Nicolas Perrin "
    "Morin Mathieu Clément Gauthier Dumont Lopez Fontaine Chevalier Robin Masson Sanchez Gérard Nguyen "
    "Boyer Denis Lemaire Duval Joly Gautier Roger Roche Roy Noël Meyer Lucas Meunier Jean Perez Marchand "
    "Dufour Blanchard Marie Barbier Brun Dumas Brunet Schmitt Leroux Colin Fernandez Pierre Renard Arnaud "
    "Rolland Caron Aubert Giraud Leclerc Vidal Bourgeois Renaud Lemoine Picard Gaillard Philippe Leclercq"
)
COMPANY = words("Conseil Industries Services Logistique Bâtiment Transports Informatique Distribution Santé")
DOMAINS = ["gmail.com", "orange.fr", "free.fr", "outlook.fr", "yahoo.fr"]
TAGS = ["client vip", "newsletter", "salon 2024", "partenaire", "relance", "export", "grand compte"]
CITIES = ["Paris", "Lyon", "Marseille", "Toulouse", "Nantes", "Lille", "Bordeaux", "Rennes", "Nice"]


def contact_data(rng: random.Random, n: int, organization_ids: list[int]) -> dict[str, Any]:
    """The n-th generated contact, in the API's JSON shape (5% organizations)."""
    city = rng.choice(CITIES)
    address = {"kind": "main", "street": f"{rng.randint(1, 200)} rue {rng.choice(LAST)}", "city": city}
    phone = f"06 {n // 1000000 % 100:02d} {n // 10000 % 100:02d} {n // 100 % 100:02d} {n % 100:02d}"
    tags = rng.sample(TAGS, rng.choice((0, 0, 1, 1, 2)))
    if n % 20 == 0:
        name = f"{rng.choice(LAST)} {rng.choice(COMPANY)} {n}"
        return {
            "kind": "organization",
            "name": name,
            "emails": [{"address": f"contact{n}@{rng.choice(LAST).lower()}-{n}.fr"}],
            "phones": [{"number": phone, "type": "work"}],
            "addresses": [address],
            "tags": tags,
        }
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = f"{first}.{last}.{n}".lower().replace("é", "e").replace("è", "e").replace("ë", "e")
    data: dict[str, Any] = {
        "kind": "person",
        "first_name": first,
        "last_name": last,
        "emails": [{"address": f"{local}@{rng.choice(DOMAINS)}", "accepts_email": rng.random() < 0.3}],
        "phones": [{"number": phone, "sms": rng.random() < 0.2}],
        "addresses": [address],
        "tags": tags,
    }
    if organization_ids and rng.random() < 0.3:
        data["organization_id"] = rng.choice(organization_ids)
    return data


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def percentile_ms(samples: list[float], fraction: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(len(samples) * fraction))] * 1000


def timed(calls: Iterator[Callable[[], Any]]) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of each call."""
    wall, cpu = [], []
    for call in calls:
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


class Profiler:
    """pyinstrument around one part when ``--profile`` names it (pip install pyinstrument)."""

    def __init__(self, wanted: str | None, part: str) -> None:
        self.active = wanted == part
        self.profiler: Any = None

    def __enter__(self) -> Profiler:
        if self.active:
            from pyinstrument import Profiler as Pyinstrument

            self.profiler = Pyinstrument()
            self.profiler.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        if self.profiler is not None:
            self.profiler.stop()
            print(self.profiler.output_text(unicode=True, color=False, show_all=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--contacts", type=int, default=100_000, help="contacts in the database (default 100000)"
    )
    parser.add_argument(
        "--creations", type=int, default=10_000, help="of which through create_contact (10000)"
    )
    parser.add_argument("--repeat", type=int, default=50, help="runs per read figure (median; default 50)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="keep the database file (its path is printed)")
    parser.add_argument(
        "--profile",
        choices=("bulk", "batches", "creations", "list", "search"),
        help="print a pyinstrument profile of a part",
    )
    parser.add_argument(
        "--reader",
        choices=("admin", "member"),
        default="admin",
        help="who reads: an admin (no access filter) or a team member (private contacts, teams)",
    )
    args = parser.parse_args(argv)
    if not 0 < 2 * args.creations <= args.contacts:
        parser.error("--creations must be between 1 and half of --contacts")

    from crmcore import create_app
    from crmcore.extensions import db
    from crmcore.migrating import upgrade_all
    from crmcore.services.contacts import (
        ValidationCache,
        create_contact,
        create_contacts,
        insert_contacts,
        prepare_contact,
    )
    from crmcore.services.users import create_team, create_token, create_user, update_user

    folder = tempfile.mkdtemp(prefix="bench_contacts_")
    url = "sqlite:///" + os.path.join(folder, "bench.sqlite")
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    rng = random.Random(args.seed)
    report: list[tuple[str, str, bool | None]] = []

    with app.app_context():
        upgrade_all()
        admin = create_user("bench@example.com", "bench-password", is_admin=True, name="Bench")
        _token_row, token = create_token(admin.id, "bench")
        team_id: int | None = None
        if args.reader == "member":
            team_id = create_team("Bench team").id
            reader = create_user("reader@example.com", "bench-password", name="Reader")
            update_user(reader.id, team_ids=[team_id])
            _token_row, token = create_token(reader.id, "bench")

        def generated(n: int) -> dict[str, Any]:
            data = contact_data(rng, n, organization_ids)
            if team_id is not None and n % 10 == 0:
                data["visibility"] = "private"
                data["team_id"] = team_id if n % 20 == 0 else None
            return data

        # 1. The bulk part, through the import path.
        bulk = args.contacts - 2 * args.creations
        organization_ids: list[int] = []
        start = time.perf_counter()
        with Profiler(args.profile, "bulk"):
            cache = ValidationCache()
            tag_cache: dict[str, tuple[int, str]] = {}
            for offset in range(0, bulk, 1000):
                chunk = [generated(n) for n in range(offset, min(offset + 1000, bulk))]
                cleans = [prepare_contact(data, admin, cache) for data in chunk]
                ids = insert_contacts(cleans, admin, "import", tag_cache=tag_cache, fire_events=False)
                organization_ids.extend(
                    i for i, d in zip(ids, chunk, strict=True) if d["kind"] == "organization"
                )
        bulk_seconds = time.perf_counter() - start
        print(f"bulk: {bulk:,} contacts via prepare_contact + insert_contacts in {bulk_seconds:.1f} s")

        # 2. Through create_contacts, 1,000 per call: the creation rate of the service layer.
        batched = [generated(n) for n in range(bulk, bulk + args.creations)]
        gc.collect()
        start, start_cpu = time.perf_counter(), time.process_time()
        with Profiler(args.profile, "batches"):
            for offset in range(0, len(batched), 1000):
                create_contacts(batched[offset : offset + 1000], admin, "api")
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
        rate = len(batched) / seconds
        figure = f"{rate:,.0f} /s (cpu {len(batched) / cpu_seconds:,.0f} /s)"
        report.append(("creations through create_contacts (1,000 a call)", figure, rate > TARGET_RATE))
        print(f"created {len(batched):,} contacts through create_contacts in {seconds:.1f} s")

        # 3. One by one through create_contact, a transaction (and a commit) each.
        creations = [generated(n) for n in range(bulk + args.creations, args.contacts)]
        gc.collect()
        start, start_cpu = time.perf_counter(), time.process_time()
        with Profiler(args.profile, "creations"):
            for data in creations:
                create_contact(data, admin, "api")
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
        rate = len(creations) / seconds
        figure = f"{rate:,.0f} /s (cpu {len(creations) / cpu_seconds:,.0f} /s)"
        report.append(("creations one by one (create_contact, a commit each)", figure, None))
        print(f"created {len(creations):,} contacts one by one in {seconds:.1f} s")

        emails, phones, last_names = [], [], []
        # Searched for: contacts every reader sees (so one sample serves either reader).
        searchable = [data for data in creations if data.get("visibility") != "private"]
        for data in rng.sample(searchable, min(len(searchable), args.repeat)):
            emails.append(data["emails"][0]["address"])
            phones.append(data["phones"][0]["number"])
            last_names.append(data.get("last_name") or data["name"].split()[0])
        db.session.remove()

    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"

    def get(path: str, expect: int | None = None) -> Callable[[], Any]:
        def call() -> Any:
            response = client.get(path)
            assert response.status_code == 200, (path, response.get_json())
            items = response.get_json()["items"]
            if expect is not None:
                assert len(items) >= expect, (path, len(items))
            return items

        return call

    # Warm up (first requests compile templates, fill caches); the figures are what follows.
    for _ in range(3):
        get("/api/v1/contacts?sort=name&limit=50")()

    deep_cursor = client.get("/api/v1/contacts?sort=name&limit=500").get_json()["next_cursor"]
    prefixes = [name[:3] for name in last_names]
    formats = [
        lambda p: p,  # as stored: "06 12 34 56 78"
        lambda p: p.replace(" ", ""),
        lambda p: "+33 " + p[1:],
        lambda p: p.replace(" ", ".")[:8],  # a prefix: "06.12.34"
    ]
    reads = [
        ("list page, 50 rows sorted by name", [get("/api/v1/contacts?sort=name&limit=50", 50)] * args.repeat),
        (
            "list page deep in the list (cursor)",
            [get(f"/api/v1/contacts?sort=name&limit=50&cursor={deep_cursor}", 50)] * args.repeat,
        ),
        ("search by name prefix (3 letters)", [get(f"/api/v1/contacts?q={p}&limit=50", 1) for p in prefixes]),
        ("search by email", [get(f"/api/v1/contacts?q={e}&limit=50", 1) for e in emails]),
        (
            "search by phone digits",
            [
                get(f"/api/v1/contacts?q={formats[i % len(formats)](p).replace('+', '%2B')}&limit=50", 1)
                for i, p in enumerate(phones)
            ],
        ),
    ]
    for label, calls in reads:
        part = "list" if label.startswith("list") else "search"
        with Profiler(args.profile, part):
            wall, cpu = timed(iter(calls))
        figure = median_ms(wall)
        report.append(
            (
                label,
                f"{figure:.1f} ms (cpu {median_ms(cpu):.1f}, p90 {percentile_ms(wall, 0.9):.1f})",
                figure < TARGET_MS,
            )
        )

    print()
    print(
        f"{args.contacts:,} contacts, SQLite, read by {args.reader}, median of {args.repeat} runs  (targets: < {TARGET_MS:.0f} ms, > {TARGET_RATE:,.0f} creations/s)"
    )
    print(
        f"  (wall clock; cpu = this process's CPU time, the figure to trust when others share the machine: load {os.getloadavg()[0]:.1f})"
    )
    width = max(len(label) for label, _figure, _ok in report)
    for label, figure, ok in report:
        verdict = "" if ok is None else ("OK" if ok else "MISSED")
        print(f"  {label:<{width}}  {figure:>28}  {verdict}")
    with app.app_context():
        db.engine.dispose()
    if args.keep:
        print(f"database kept: {url}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CSV import rate and memory, then streamed exports (vCard, CSV, JSON), on a fresh SQLite database.

    .venv/bin/python benchmarks/bench_import.py                  # 100,000 rows
    .venv/bin/python benchmarks/bench_import.py --rows 20000     # a quicker look
    .venv/bin/python benchmarks/bench_import.py --rows 1000000   # constant memory on a big file
    .venv/bin/python benchmarks/bench_import.py --profile        # cProfile of the import, top functions

The CSV (generated into a temporary folder, never held in memory) has what contact exports hold:
first and last name, email, mobile, organization (3,000 names shared by the rows, found or created
and linked), street, postal code, city, country and two tags. ``crm import`` runs the same code
(:func:`crmcore.interchange.importer.import_file`, mode create, every installed plugin enabled).

Figures: rows/s of the import (target 5,000 rows/s; ``CRM_IMPORT_READ_AHEAD=off`` to see it in one
process), the peak resident memory after 10% of the rows
and at the end (constant memory: the two stay close whatever ``--rows``), then contacts/s and peak
memory of each export streamed to a file. Exits 0: benchmarks report, tests assert.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import os
import pstats
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_RATE = 5000.0
FIRST = [
    "Marie",
    "Jean",
    "Pierre",
    "Michel",
    "Anne",
    "Philippe",
    "Nathalie",
    "Isabelle",
    "Alain",
    "Sylvie",
    "Nicolas",
    "Éric",
    "Céline",
    "Hélène",
    "Léa",
]
LAST = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Lefèvre",
    "Garcia",
    "Roux",
    "Müller",
]
CITIES = [
    ("Paris", "75011"),
    ("Lyon", "69003"),
    ("Marseille", "13001"),
    ("Lille", "59000"),
    ("Nantes", "44000"),
]
TAGS = ["client", "vip", "salon 2026", "newsletter", "partenaire", "fournisseur"]


def calibration() -> float:
    """Seconds for 10 million additions in a Python loop: how fast this machine runs Python now."""
    start = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - start


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_csv(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "First Name",
                "Last Name",
                "E-mail Address",
                "Mobile Phone",
                "Company",
                "Business Street",
                "Business Postal Code",
                "Business City",
                "Business Country/Region",
                "Categories",
            ]
        )
        for i in range(rows):
            city, code = rng.choice(CITIES)
            writer.writerow(
                [
                    rng.choice(FIRST),
                    f"{rng.choice(LAST)}-{i}",
                    f"person{i}@example{i % 997}.com",
                    f"+33 6 {i // 10000 % 100:02d} {i // 100 % 100:02d} {i % 100:02d} {rng.randint(10, 99)}",
                    f"Société {rng.randint(1, 3000)}",
                    f"{rng.randint(1, 200)} rue de la République",
                    code,
                    city,
                    "France",
                    ";".join(rng.sample(TAGS, 2)),
                ]
            )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true", help="cProfile the import, print the top functions")
    parser.add_argument("--import-only", action="store_true", help="measure the import, not the exports")
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="records per transaction (default: the importer's)"
    )
    args = parser.parse_args()

    from crmcore import create_app
    from crmcore.extensions import db
    from crmcore.interchange.export import export_csv, export_json, export_vcf
    from crmcore.interchange.importer import ImportOptions, import_file
    from crmcore.migrating import upgrade_all

    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
        f"10^7 Python additions in {calibration():.2f} s"
    )
    with tempfile.TemporaryDirectory(prefix="crm-bench-import-") as folder:
        tmp = Path(folder)
        app = create_app({"DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite'}", "SECRET_KEY": "bench"})
        with app.app_context():
            upgrade_all()
            source = tmp / "contacts.csv"
            start = time.perf_counter()
            write_csv(source, args.rows)
            print(
                f"generated {args.rows:,} rows ({source.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s"
            )
            marks: dict[str, float] = {}

            def progress(done: int, report: object, _source: object) -> None:
                if "tenth" not in marks and done >= args.rows // 10:
                    marks["tenth"] = peak_mb()

            profiler = cProfile.Profile() if args.profile else None
            with source.open("rb") as stream:
                start, cpu = time.perf_counter(), time.process_time()
                if profiler:
                    profiler.enable()
                report = import_file(
                    stream,
                    None,
                    ImportOptions(**({"chunk_size": args.chunk_size} if args.chunk_size else {})),
                    progress,
                    file_name=source.name,
                    size=source.stat().st_size,
                )
                if profiler:
                    profiler.disable()
                elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            from crmcore.interchange import read_ahead

            ahead = read_ahead.wanted("csv", source.stat().st_size)
            rate = args.rows / elapsed
            verdict = "OK" if rate >= TARGET_RATE else "MISSED"
            print(
                f"import: {report.created:,} created, {report.rejected_total} rejected, "
                f"{report.organizations:,} organizations, in {elapsed:.1f} s = {rate:,.0f} rows/s "
                f"(target {TARGET_RATE:,.0f}: {verdict})"
            )
            print(
                f"CPU time of this process: {cpu:.1f} s = {args.rows / cpu:,.0f} rows per CPU second "
                + (
                    "(the file was read and validated ahead in a second process: CRM_IMPORT_READ_AHEAD)"
                    if ahead
                    else "(read in this process; when far above the wall rate, other processes took the CPUs)"
                )
            )
            print(
                f"peak memory: {marks.get('tenth', 0):.0f} MB after 10% of the rows, {peak_mb():.0f} MB at the end"
            )
            if profiler:
                if os.environ.get("BENCH_PROFILE_DUMP"):
                    profiler.dump_stats(os.environ["BENCH_PROFILE_DUMP"])
                pstats.Stats(profiler).sort_stats(
                    os.environ.get("BENCH_PROFILE_SORT", "cumulative")
                ).print_stats(40)
            db.session.remove()
            total = report.created + report.organizations
            for name, chunks in (
                ()
                if args.import_only
                else (
                    ("vCard 3.0", lambda: export_vcf(None)),
                    ("CSV", lambda: export_csv(None)),
                    ("JSON", lambda: export_json(None)),
                )
            ):
                target = tmp / "export.out"
                start = time.perf_counter()
                try:
                    with target.open("w", encoding="utf-8") as out:
                        for chunk in chunks():
                            out.write(chunk)
                except ImportError as exc:
                    print(f"export {name}: not available ({exc})")
                    continue
                elapsed = time.perf_counter() - start
                print(
                    f"export {name}: {total:,} contacts, {target.stat().st_size / 1e6:.1f} MB in {elapsed:.1f} s "
                    f"= {total / elapsed:,.0f} contacts/s; peak memory so far {peak_mb():.0f} MB"
                )
                os.remove(target)
                db.session.remove()
            db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The FEBRL duplicate-detection corpus (shared/corpora/febrl) as contacts: used by the duplicate
tests and by benchmarks/bench_duplicates.py, so both import the records the same way."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# CI clones the repository with shared/ beside it; this workplace also mounts it at /work/shared.
FEBRL_DIRS = [Path("/work/shared/corpora/febrl"), ROOT.parent / "shared" / "corpora" / "febrl"]
FEBRL = next((folder for folder in FEBRL_DIRS if folder.exists()), FEBRL_DIRS[0])


def read_febrl(path: Path | str) -> list[dict[str, str]]:
    """The records of a FEBRL file (a name inside :data:`FEBRL`, or a path); the header has a space
    after each comma."""
    path = Path(path) if Path(path).is_absolute() else FEBRL / path
    with path.open(newline="") as handle:
        rows = csv.DictReader(handle, skipinitialspace=True)
        return [{k: (v or "").strip() for k, v in row.items()} for row in rows]


def febrl_contact(row: dict[str, str]) -> dict[str, Any]:
    """A FEBRL record as a contact in the API's JSON shape (``rec_id`` as ``external_id``)."""
    dob = row["date_of_birth"]
    try:
        birthday = dt.date(int(dob[:4]), int(dob[4:6]), int(dob[6:8])).isoformat() if dob else None
    except ValueError:
        birthday = None  # FEBRL has impossible dates such as 19301313
    first, last = row["given_name"] or None, row["surname"] or None
    if last is None:  # a person needs a last name: a lone name goes there
        first, last = None, first or "?"
    street = " ".join(p for p in (row["street_number"], row["address_1"]) if p) or None
    return {
        "kind": "person",
        "external_id": row["rec_id"],
        "first_name": first,
        "last_name": last,
        "birthday": birthday,
        "addresses": [
            {
                "kind": "main",
                "street": street,
                "street2": row["address_2"] or None,
                "postal_code": row["postcode"] or None,
                "city": row["suburb"] or None,
                "region": row["state"] or None,
                "country": "AU",
            }
        ],
    }

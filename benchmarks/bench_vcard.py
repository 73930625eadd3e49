"""vCard reading, importing and writing, and envelope PDFs, on a fresh SQLite database.

    .venv/bin/python benchmarks/bench_vcard.py                # 5,000 cards
    .venv/bin/python benchmarks/bench_vcard.py --cards 1000   # a quicker look

The file (generated in memory) mixes what real exports hold: 3.0 cards with item groups and X-
properties, and 2.1 cards with quoted-printable UTF-8 names and notes; one card in ten has a small
photo. Figures: cards/s of :func:`read_cards` alone (parsing, no database), of the whole import
(``import_file``, mode create: contacts, extras, photos, notes), of :func:`write_cards` in 3.0 and
4.0, then envelope pages/s (DL). A second import of plain cards (nothing the contact does not hold,
so no ``after_save``) shows the importer's bulk path. Exits 0: benchmarks report, tests assert.
"""

from __future__ import annotations

import argparse
import base64
import io
import quopri
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIRST = ["Marie", "Jean", "Élodie", "Hélène", "Nicolas", "Léa", "Jürgen", "Zoë"]
LAST = ["Martin", "Dubois", "Lefèvre", "Müller", "Roux", "Garcia", "Ñúñez", "O'Brien"]
CITIES = [("Paris", "75011", "France"), ("Lyon", "69003", "France"), ("Berlin", "10115", "Germany")]


def photo() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (120, 160), (90, 120, 200)).save(buffer, "JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


def make_file(cards: int, seed: int = 11) -> bytes:
    rng = random.Random(seed)
    image = photo()
    out: list[str] = []
    for i in range(cards):
        first, last = rng.choice(FIRST), f"{rng.choice(LAST)}{i}"
        city, code, country = rng.choice(CITIES)
        if i % 2:
            qp = quopri.encodestring(f"{last};{first};;;".encode()).decode().replace("=\n", "=\r\n")
            note = quopri.encodestring(f"Rencontré au salon, intéressé {i}\r\nà rappeler".encode()).decode()
            note = note.replace("=\n", "=\r\n")
            lines = [
                "BEGIN:VCARD",
                "VERSION:2.1",
                f"N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:{qp}",
                f"TEL;CELL;PREF:+33 6 {i // 10000 % 100:02d} {i // 100 % 100:02d} {i % 100:02d} 11",
                f"EMAIL;PREF;INTERNET:p{i}@example.com",
                f"ADR;WORK:;;{rng.randint(1, 99)} rue Neuve;{city};;{code};{country}",
                f"NOTE;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:{note}",
                "X-MS-OL-DEFAULT-POSTAL-ADDRESS:2",
            ]
        else:
            lines = [
                "BEGIN:VCARD",
                "VERSION:3.0",
                f"N:{last};{first};;;",
                f"FN:{first} {last}",
                f"ORG:Société {i % 300};Ventes",
                f"item1.EMAIL;type=INTERNET;type=pref:c{i}@example.org",
                "item1.X-ABLabel:_$!<Other>!$_",
                f"TEL;type=WORK;type=VOICE:+49 30 {i:07d}",
                f"item2.ADR;type=HOME:;;{rng.randint(1, 99)} Hauptstraße;{city};;{code};{country}",
                "item2.X-ABADR:de",
                "CATEGORIES:client,vip",
                f"X-SKYPE:skype{i}",
                "BDAY:1980-05-21",
            ]
        if i % 10 == 0:
            lines.append(f"PHOTO;ENCODING=b;TYPE=JPEG:{image}")
        lines.append("END:VCARD")
        out.append("\r\n".join(lines) + "\r\n")
    return "".join(out).encode()


def make_plain_file(cards: int) -> bytes:
    """Cards with nothing beyond what the contact record holds (the importer's bulk path)."""
    return "".join(
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nN:Plain{i};Anne;;;\r\nFN:Anne Plain{i}\r\n"
        f"EMAIL;TYPE=INTERNET,WORK:plain{i}@example.net\r\nTEL;TYPE=CELL:+33 7 {i:08d}\r\n"
        f"ADR;TYPE=WORK:;;{i % 90 + 1} avenue Foch;Paris;;75016;France\r\nEND:VCARD\r\n"
        for i in range(cards)
    ).encode()


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s ({count:,} in {seconds:.2f} s)"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cards", type=int, default=5000)
    args = parser.parse_args()

    from sqlalchemy import select

    from crmcore import create_app
    from crmcore.builtin.envelope import envelopes_pdf
    from crmcore.extensions import db
    from crmcore.interchange.importer import import_file
    from crmcore.interchange.vcard import read_cards, write_cards
    from crmcore.migrating import upgrade_all
    from crmcore.models import Contact

    data = make_file(args.cards)
    print(f"file: {args.cards:,} cards, {len(data) / 1048576:.1f} MB")
    with tempfile.TemporaryDirectory(prefix="crm-bench-vcard-") as folder:
        app = create_app(
            {
                "DATABASE_URL": f"sqlite:///{Path(folder) / 'bench.sqlite'}",
                "SECRET_KEY": "bench",
                "ENVELOPE_SENDER_NAME": "Bench SARL",
                "ENVELOPE_SENDER_STREET": "1 rue du Test",
                "ENVELOPE_SENDER_POSTAL_CODE": "75001",
                "ENVELOPE_SENDER_CITY": "Paris",
            }
        )
        with app.app_context():
            upgrade_all()
            start = time.perf_counter()
            records = list(read_cards(io.BytesIO(data)))
            print("read_cards (parse only):", rate(len(records), time.perf_counter() - start))
            assert all(r.error is None for r in records)

            start = time.perf_counter()
            report = import_file(io.BytesIO(data), None, file_name="bench.vcf")
            print(
                "import (contacts, extras, photos, notes):",
                rate(args.cards, time.perf_counter() - start),
                f"- created {report.created}, rejected {len(report.rejected)}",
            )

            plain = make_plain_file(args.cards)
            start = time.perf_counter()
            report = import_file(io.BytesIO(plain), None, file_name="plain.vcf")
            print(
                "import of plain cards (nothing beyond the record, bulk path):",
                rate(args.cards, time.perf_counter() - start),
                f"- created {report.created}",
            )

            ids = list(
                db.session.scalars(select(Contact.id).where(Contact.kind == "person").order_by(Contact.id))
            )
            for version in ("3.0", "4.0"):
                db.session.expunge_all()
                start = time.perf_counter()
                size = 0
                for offset in range(0, len(ids), 500):
                    page = list(
                        db.session.scalars(select(Contact).where(Contact.id.in_(ids[offset : offset + 500])))
                    )
                    for chunk in write_cards(page, version):
                        size += len(chunk)
                print(
                    f"write_cards {version}:",
                    rate(len(ids), time.perf_counter() - start),
                    f"- {size / 1048576:.1f} MB",
                )

            sample = list(db.session.scalars(select(Contact).where(Contact.id.in_(ids[:1000]))))
            start = time.perf_counter()
            pdf = envelopes_pdf(sample, "DL")
            print(
                "envelopes DL:", rate(len(sample), time.perf_counter() - start), f"- {len(pdf) / 1024:.0f} KB"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

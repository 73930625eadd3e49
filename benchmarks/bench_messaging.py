"""Messaging: mass sending rate and one message through the REST API (SQLite, jobs in-process).

    .venv/bin/python benchmarks/bench_messaging.py                       # 2,000 contacts
    .venv/bin/python benchmarks/bench_messaging.py --contacts 500 --repeat 20

A fresh SQLite file gets every migration and ``--contacts`` people, each with a mobile phone that
accepts SMS. A channel that accepts every message at once stands in for the provider, so the
figures are the CRM's own cost: consent checks, template rendering, the message log, the claim
and the status update of every message.

* mass sending: :func:`crmcore.services.messaging.send_bulk` on all contacts, with a template using
  a contact placeholder (every message is queued, claimed, "sent" and recorded);
* one message: ``POST /api/v1/contacts/{id}/messages`` through the Flask test client (median);
* rendering: a template for one contact, rendered alone (median).

Targets: more than 300 messages per second in a mass sending, one message under 30 ms. Prints the
figures with OK / MISSED and exits 0 (benchmarks report; tests assert behaviour).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_RATE = 300.0
TARGET_MS = 30.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args(argv)

    from crmcore import create_app
    from crmcore.extensions import db
    from crmcore.migrating import upgrade_all
    from crmcore.plugin_api import Channel, SendResult, hookimpl
    from crmcore.services.contacts import create_contact
    from crmcore.services.message_templates import create_template, placeholder_context, render
    from crmcore.services.messaging import send_bulk
    from crmcore.services.users import create_token, create_user

    class InstantChannel:
        """Accepts every message at once: the provider's cost is left out."""

        def __init__(self) -> None:
            self.count = 0

        def send(self, message: Any) -> SendResult:
            self.count += 1
            return SendResult(provider_id=f"bench-{message.id}", status="sent")

        @hookimpl
        def register_channels(self) -> list[Channel]:
            return [Channel(key="benchsms", label="Bench SMS", target="phone", consent="sms", send=self.send)]

    channel = InstantChannel()
    folder = tempfile.mkdtemp(prefix="crm-bench-messaging-")
    url = "sqlite:///" + os.path.join(folder, "bench.sqlite")
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "PLUGIN_OBJECTS": {"bench": channel}})
    with app.app_context():
        upgrade_all()
        ids = []
        for n in range(args.contacts):
            phone = f"06 {n // 1000000 % 100:02d} {n // 10000 % 100:02d} {n // 100 % 100:02d} {n % 100:02d}"
            contact = create_contact(
                {
                    "kind": "person",
                    "first_name": f"P{n}",
                    "last_name": "Bench",
                    "phones": [{"number": phone, "sms": True}],
                },
                None,
                "import",
            )
            ids.append(contact.id)
        create_template(
            {
                "key": "promo",
                "channel": "benchsms",
                "language": "fr",
                "body": "Bonjour {{ contact.first_name }} !",
            }
        )

        started = time.perf_counter()
        _batch, outcomes = send_bulk(ids, {"channel": "benchsms", "template": "promo"})
        seconds = time.perf_counter() - started
        sent = sum(1 for o in outcomes if o.status == "sent")
        rate = sent / seconds
        print(
            f"mass sending: {sent:,} messages in {seconds:.2f} s = {rate:,.0f} messages/s "
            f"(target > {TARGET_RATE:.0f}) {'OK' if rate > TARGET_RATE else 'MISSED'}"
        )

        admin = create_user("bench@example.com", None, is_admin=True)
        _row, token = create_token(admin.id, "bench")
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        samples = []
        for i in range(args.repeat):
            contact_id = ids[i % len(ids)]
            t0 = time.perf_counter()
            response = client.post(
                f"/api/v1/contacts/{contact_id}/messages",
                json={"channel": "benchsms", "body": "Hi {{ contact.first_name }}"},
            )
            samples.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 201, response.json
        one = statistics.median(samples)
        print(
            f"one message via the API: median {one:.1f} ms over {args.repeat} (target < {TARGET_MS:.0f} ms) "
            f"{'OK' if one < TARGET_MS else 'MISSED'}"
        )

        from crmcore.models import Contact

        contact = db.session.get(Contact, ids[0])
        renders = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            render(
                "Bonjour {{ contact.first_name }} {{ contact.last_name }}",
                placeholder_context(contact, None, "fr"),
            )
            renders.append((time.perf_counter() - t0) * 1000)
        print(f"template rendering for one contact: median {statistics.median(renders):.2f} ms")
        print(f"channel calls: {channel.count:,}; load average while measuring: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

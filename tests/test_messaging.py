"""Core messaging: consent checks, the message log, templates, mass sending and delivery (jobs in-process)."""

from __future__ import annotations

from typing import Any

import pytest

from crmcore.errors import ChannelError
from crmcore.plugin_api import Channel, OutboundMessage, SendResult, hookimpl


class FakeChannels:
    """A phone channel that records what it delivers and can fail on demand."""

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []
        self.calls = 0
        self.failures: list[Exception] = []

    def send(self, message: OutboundMessage) -> SendResult:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)
        return SendResult(provider_id=f"fake-{message.id}", status="sent")

    @hookimpl
    def register_channels(self) -> list[Channel]:
        return [
            Channel(
                key="fakesms", label="Fake SMS", target="phone", consent="sms", send=self.send, max_length=300
            )
        ]


@pytest.fixture
def fake() -> FakeChannels:
    return FakeChannels()


@pytest.fixture
def mapp(register_plugin: Any, fake: FakeChannels) -> Any:
    application = register_plugin(
        fake,
        "fakechannels",
        PLUGINS=[],
        MAIL_FROM="crm@example.com",
        MESSAGE_MAX_ATTEMPTS=3,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=9,  # nothing listens there: email delivery fails fast when a test reaches it
        SMTP_TIMEOUT=2,
    )
    with application.app_context():
        yield application


@pytest.fixture
def admin(mapp: Any) -> Any:
    from crmcore.services.users import create_user

    return create_user("boss@example.com", None, is_admin=True, name="Alice Boss")


def _client(app: Any, user: Any) -> Any:
    from crmcore.services.users import create_token

    _row, token = create_token(user.id, "test")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


@pytest.fixture
def mclient(mapp: Any, admin: Any) -> Any:
    return _client(mapp, admin)


def _person(**fields: Any) -> Any:
    from crmcore.services.contacts import create_contact

    data = {"kind": "person", "last_name": "Martin", "first_name": "Julie", **fields}
    return create_contact(data, None, "api")


def _consenting(**fields: Any) -> Any:
    return _person(
        phones=[{"number": "+33 6 12 34 56 78", "sms": True}, {"number": "+33 6 99 99 99 99", "sms": False}],
        emails=[{"address": "julie@example.org", "accepts_email": True}],
        **fields,
    )


# -- consent --------------------------------------------------------------------------------------


def test_refusals_say_why(mclient: Any, fake: FakeChannels) -> None:
    contact = _consenting()
    url = f"/api/v1/contacts/{contact.id}/messages"

    no_consent = mclient.post(url, json={"channel": "fakesms", "to": "+33699999999", "body": "hi"})
    assert no_consent.status_code == 422
    assert no_consent.json["reason"] == "no_consent"
    assert "has not agreed" in no_consent.json["errors"]["to"][0]

    unknown = mclient.post(url, json={"channel": "fakesms", "to": "+33 7 00 00 00 01", "body": "hi"})
    assert unknown.status_code == 422 and unknown.json["reason"] == "unknown_target"

    bad_channel = mclient.post(url, json={"channel": "pigeon", "body": "hi"})
    assert (
        bad_channel.status_code == 422
        and "unknown channel 'pigeon'" in bad_channel.json["errors"]["channel"][0]
    )

    both = mclient.post(url, json={"channel": "fakesms", "body": "hi", "template": "x"})
    assert both.status_code == 422 and "body" in both.json["errors"]

    assert fake.calls == 0
    assert mclient.get(url).json == []  # nothing refused is logged


def test_do_not_email_and_email_consent(mclient: Any) -> None:
    contact = _person(emails=[{"address": "a@example.org", "accepts_email": False}])
    url = f"/api/v1/contacts/{contact.id}/messages"
    refused = mclient.post(url, json={"channel": "email", "subject": "Hello", "body": "Hi"})
    assert refused.status_code == 422 and refused.json["reason"] == "no_target"
    refused = mclient.post(
        url, json={"channel": "email", "to": "A@example.org", "subject": "Hello", "body": "Hi"}
    )
    assert refused.status_code == 422 and refused.json["reason"] == "no_consent"

    blocked = _person(do_not_email=True, emails=[{"address": "b@example.org", "accepts_email": True}])
    refused = mclient.post(
        f"/api/v1/contacts/{blocked.id}/messages", json={"channel": "email", "subject": "S", "body": "Hi"}
    )
    assert refused.status_code == 422 and refused.json["reason"] == "do_not_email"
    assert "do not email" in refused.json["message"]

    no_subject = mclient.post(
        f"/api/v1/contacts/{contact.id}/messages", json={"channel": "email", "body": "Hi"}
    )
    assert no_subject.status_code == 422 and "subject" in no_subject.json["errors"]


def test_blocking_warning_refuses(mclient: Any, fake: FakeChannels) -> None:
    from crmcore.services.contacts import add_warning

    contact = _consenting()
    add_warning(contact.id, "Unpaid invoices: do not contact", level="blocking")
    response = mclient.post(
        f"/api/v1/contacts/{contact.id}/messages", json={"channel": "fakesms", "body": "hi"}
    )
    assert response.status_code == 409
    assert "Unpaid invoices" in response.json["message"]
    assert fake.calls == 0


def test_read_only_user_cannot_send(mapp: Any, fake: FakeChannels) -> None:
    from crmcore.services.users import create_user

    reader = create_user("reader@example.com", None)
    contact = _consenting()  # public_read, owned by nobody
    response = _client(mapp, reader).post(
        f"/api/v1/contacts/{contact.id}/messages", json={"channel": "fakesms", "body": "hi"}
    )
    assert response.status_code == 403
    assert fake.calls == 0


# -- sending and delivery --------------------------------------------------------------------------


def test_send_logs_and_delivers_in_process(mclient: Any, fake: FakeChannels) -> None:
    contact = _consenting()
    response = mclient.post(
        f"/api/v1/contacts/{contact.id}/messages",
        json={"channel": "fakesms", "body": "Bonjour {{ contact.first_name }}, de {{ sender.name }}"},
    )
    assert response.status_code == 201, response.json
    message = response.json
    assert message["status"] == "sent"
    assert message["to"] == "+33612345678"  # the first phone with SMS consent
    assert message["body"] == "Bonjour Julie, de Alice Boss"
    assert message["provider_id"] == f"fake-{message['id']}"
    assert message["attempts"] == 1 and message["sent_at"]
    assert [m.body for m in fake.sent] == ["Bonjour Julie, de Alice Boss"]
    assert fake.sent[0].idempotency_key and fake.sent[0].contact_id == contact.id

    log = mclient.get(f"/api/v1/contacts/{contact.id}/messages").json
    assert [m["id"] for m in log] == [message["id"]]
    assert mclient.get(f"/api/v1/messages/{message['id']}").json["status"] == "sent"


def test_retryable_error_then_success_sends_once(mclient: Any, fake: FakeChannels) -> None:
    fake.failures = [ChannelError("provider answered 500", retryable=True)]
    contact = _consenting()
    response = mclient.post(
        f"/api/v1/contacts/{contact.id}/messages", json={"channel": "fakesms", "body": "x"}
    )
    assert response.status_code == 201
    assert response.json["status"] == "sent"
    assert response.json["attempts"] == 2
    assert response.json["error"] is None
    assert fake.calls == 2 and len(fake.sent) == 1


def test_permanent_error_fails_without_retry(mclient: Any, fake: FakeChannels) -> None:
    fake.failures = [ChannelError("invalid number", retryable=False)]
    contact = _consenting()
    response = mclient.post(
        f"/api/v1/contacts/{contact.id}/messages", json={"channel": "fakesms", "body": "x"}
    )
    assert response.json["status"] == "failed"
    assert response.json["error"] == "invalid number"
    assert fake.calls == 1


def test_gives_up_after_max_attempts(mclient: Any, fake: FakeChannels) -> None:
    fake.failures = [ChannelError("timeout", retryable=True) for _ in range(5)]
    contact = _consenting()
    response = mclient.post(
        f"/api/v1/contacts/{contact.id}/messages", json={"channel": "fakesms", "body": "x"}
    )
    assert response.json["status"] == "failed"
    assert response.json["error"] == "gave up after 3 attempts: timeout"
    assert fake.calls == 3 and fake.sent == []


def test_delivering_again_never_sends_twice(mapp: Any, fake: FakeChannels) -> None:
    from crmcore.services.messaging import deliver, send_message

    contact = _consenting()
    message = send_message(contact.id, {"channel": "fakesms", "body": "once"})
    assert message.status == "sent"
    assert deliver(message.id).state == "skipped"
    assert deliver(message.id).state == "skipped"
    assert fake.calls == 1


def test_a_claimed_message_is_left_to_its_worker(mapp: Any, fake: FakeChannels) -> None:
    from datetime import timedelta

    from crmcore.extensions import db
    from crmcore.models import Message, utcnow
    from crmcore.services.messaging import deliver, requeue_pending, send_message

    fake.failures = [ChannelError("down", retryable=True)] * 3
    contact = _consenting()
    message = send_message(contact.id, {"channel": "fakesms", "body": "x"})
    assert message.status == "failed"

    # A queued message held by another worker (its lease still running) is not sent.
    held = Message(
        contact_id=contact.id,
        direction="out",
        channel="fakesms",
        to_address="+33612345678",
        body="held",
        status="queued",
        idempotency_key="held-1",
        attempts=1,
        claim_token="other",
        claimed_until=utcnow() + timedelta(seconds=60),
    )
    db.session.add(held)
    db.session.commit()
    outcome = deliver(held.id)
    assert outcome.state == "retry" and 0 < outcome.retry_in <= 61
    assert fake.sent == []

    # Once the lease is over (the worker died), the sweeper hands it over again, once.
    held.claimed_until = utcnow() - timedelta(seconds=1)
    held.created_at = utcnow() - timedelta(minutes=5)
    db.session.commit()
    assert requeue_pending() == 1
    assert [m.body for m in fake.sent] == ["held"]
    assert requeue_pending() == 0
    db.session.refresh(held)
    assert held.status == "sent" and held.attempts == 2


def test_status_reports_only_move_forward(mapp: Any) -> None:
    from crmcore.services.messaging import send_message, update_status

    contact = _consenting()
    message = send_message(contact.id, {"channel": "fakesms", "body": "x"})
    assert update_status(message.id, "delivered", provider_id=message.provider_id).status == "delivered"
    late = update_status(message.id, "sent")
    assert late.status == "delivered" and late.delivered_at is not None


def test_body_longer_than_channel_allows(mclient: Any) -> None:
    contact = _consenting()
    response = mclient.post(
        f"/api/v1/contacts/{contact.id}/messages", json={"channel": "fakesms", "body": "x" * 301}
    )
    assert response.status_code == 422
    assert "fakesms allows 300" in response.json["errors"]["body"][0]


# -- templates --------------------------------------------------------------------------------------


def test_templates_crud_and_language(mclient: Any, fake: FakeChannels) -> None:
    from crmcore.services.fields import create_definition

    create_definition(
        {"key": "shoe_size", "label_en": "Shoe size", "label_fr": "Pointure", "type": "integer"}
    )
    base = "/api/v1/message-templates"
    fr = mclient.post(
        base,
        json={
            "key": "welcome",
            "channel": "fakesms",
            "language": "fr",
            "body": "Bonjour {{ contact.salutation }} {{ contact.last_name }} ({{ custom.shoe_size }})",
        },
    )
    assert fr.status_code == 201, fr.json
    en = mclient.post(
        base,
        json={
            "key": "welcome",
            "channel": "fakesms",
            "language": "en",
            "body": "Hello {{ contact.first_name }}",
        },
    )
    assert en.status_code == 201
    duplicate = mclient.post(
        base, json={"key": "welcome", "channel": "fakesms", "language": "en", "body": "x"}
    )
    assert duplicate.status_code == 422 and "already exists" in duplicate.json["errors"]["key"][0]
    unknown = mclient.post(
        base,
        json={"key": "oops", "channel": "fakesms", "language": "en", "body": "Hi {{ contact.nickname }}"},
    )
    assert unknown.status_code == 422 and "nickname" in unknown.json["errors"]["body"][0]
    syntax = mclient.post(
        base, json={"key": "oops", "channel": "fakesms", "language": "en", "body": "Hi {{ x"}
    )
    assert syntax.status_code == 422 and "line 1" in syntax.json["errors"]["body"][0]
    email_needs_subject = mclient.post(
        base, json={"key": "w", "channel": "email", "language": "en", "body": "x"}
    )
    assert email_needs_subject.status_code == 422 and "subject" in email_needs_subject.json["errors"]

    assert [t["language"] for t in mclient.get(base, query_string={"key": "welcome"}).json] == ["en", "fr"]
    patched = mclient.patch(f"{base}/{en.json['id']}", json={"body": "Hi {{ contact.first_name }}!"})
    assert patched.status_code == 200 and patched.json["body"] == "Hi {{ contact.first_name }}!"

    french = _consenting(language="fr", salutation="mrs", custom={"shoe_size": 38})
    sent_fr = mclient.post(
        f"/api/v1/contacts/{french.id}/messages", json={"channel": "fakesms", "template": "welcome"}
    )
    assert sent_fr.status_code == 201, sent_fr.json
    assert sent_fr.json["body"] == "Bonjour Mme Martin (38)"
    assert sent_fr.json["language"] == "fr" and sent_fr.json["template"] == "welcome"
    forced = mclient.post(
        f"/api/v1/contacts/{french.id}/messages",
        json={"channel": "fakesms", "template": "welcome", "language": "en"},
    )
    assert forced.json["body"] == "Hi Julie!"
    missing = mclient.post(
        f"/api/v1/contacts/{french.id}/messages", json={"channel": "fakesms", "template": "nope"}
    )
    assert missing.status_code == 422 and "no template 'nope'" in missing.json["errors"]["template"][0]

    assert mclient.delete(f"{base}/{en.json['id']}").status_code == 204
    assert mclient.get(f"{base}/{en.json['id']}").status_code == 404


def test_only_admins_manage_templates(mapp: Any) -> None:
    from crmcore.services.users import create_user

    user = create_user("someone@example.com", None)
    response = _client(mapp, user).post(
        "/api/v1/message-templates", json={"key": "k", "channel": "fakesms", "language": "en", "body": "x"}
    )
    assert response.status_code == 403


# -- mass sending ----------------------------------------------------------------------------------


def test_bulk_reports_each_contact(mclient: Any, fake: FakeChannels) -> None:
    from crmcore.services.contacts import add_warning

    ok1 = _consenting(first_name="Ann")
    ok2 = _consenting(first_name="Bob")
    no_phone = _person(first_name="Cid")
    blocked = _consenting(first_name="Dan")
    add_warning(blocked.id, "Litigation", level="blocking")
    response = mclient.post(
        "/api/v1/messages/bulk",
        json={
            "ids": [ok1.id, no_phone.id, blocked.id, 999999, ok2.id],
            "channel": "fakesms",
            "body": "Hi {{ contact.first_name }}",
        },
    )
    assert response.status_code == 200, response.json
    results = {r["contact_id"]: r for r in response.json["results"]}
    assert results[ok1.id]["status"] == "sent" and results[ok1.id]["message"]["body"] == "Hi Ann"
    assert results[ok2.id]["message"]["body"] == "Hi Bob"
    assert results[no_phone.id]["status"] == "refused" and results[no_phone.id]["reason"] == "no_target"
    assert results[blocked.id]["reason"] == "blocked" and "Litigation" in results[blocked.id]["error"]
    assert results[999999]["reason"] == "not_found"
    assert response.json["counts"] == {"sent": 2, "refused": 3}
    assert sorted(m.body for m in fake.sent) == ["Hi Ann", "Hi Bob"]
    batch = {results[ok1.id]["message"]["batch_id"], results[ok2.id]["message"]["batch_id"]}
    assert batch == {response.json["batch_id"]}

    invalid = mclient.post(
        "/api/v1/messages/bulk",
        json={"ids": [ok1.id], "channel": "fakesms", "to": "+33612345678", "body": "x"},
    )
    assert invalid.status_code == 422 and "to" in invalid.json["errors"]


# -- inbound, consent withdrawal, tab ----------------------------------------------------------------


def test_inbound_attaches_to_contact_and_stop_withdraws_consent(mclient: Any) -> None:
    from crmcore.services.history import entries
    from crmcore.services.messaging import record_inbound, withdraw_consent

    contact = _consenting()
    message = record_inbound("fakesms", "06 12 34 56 78", "+33700000000", "Hello!", provider_id="IN1")
    assert message.contact_id == contact.id and message.status == "received"
    assert (
        record_inbound("fakesms", "+33612345678", "+33700000000", "Hello!", provider_id="IN1").id
        == message.id
    )
    stranger = record_inbound("fakesms", "+33611111111", "+33700000000", "Who?")
    assert stranger.contact_id is None

    assert withdraw_consent("fakesms", "+33612345678") == [contact.id]
    phones = mclient.get(f"/api/v1/contacts/{contact.id}").json["phones"]
    assert [p["sms"] for p in phones] == [False, False]
    consent = [e for e in entries(contact.id) if e.action == "consent"][0]
    assert consent.source == "inbound" and consent.field == "sms:+33612345678"
    assert consent.old is True and consent.new is False
    assert withdraw_consent("fakesms", "+33612345678") == []

    log = mclient.get(f"/api/v1/contacts/{contact.id}/messages").json
    assert [(m["direction"], m["status"], m["from"]) for m in log] == [("in", "received", "+33612345678")]


def test_messages_tab(mclient: Any) -> None:
    contact = _consenting()
    mclient.post(f"/api/v1/contacts/{contact.id}/messages", json={"channel": "fakesms", "body": "<b>tab</b>"})
    tabs = {t["key"]: t for t in mclient.get(f"/api/v1/contacts/{contact.id}/tabs").json}
    assert tabs["messages"]["count"] == 1
    assert "&lt;b&gt;tab&lt;/b&gt;" in tabs["messages"]["html"]
    actions = {a["key"] for a in mclient.get(f"/api/v1/contacts/{contact.id}/actions").json}
    assert "send_email" in actions


def test_channels_are_listed(mclient: Any) -> None:
    keys = {c["key"]: c for c in mclient.get("/api/v1/plugins/channels").json}
    assert keys["email"]["has_subject"] is True and keys["email"]["consent"] == "accepts_email"
    assert keys["fakesms"]["target"] == "phone"


def test_cli_requeue_and_worker_need(mapp: Any, fake: FakeChannels) -> None:
    from datetime import timedelta

    from crmcore.cli import main
    from crmcore.extensions import db
    from crmcore.models import Message, utcnow

    contact = _consenting()
    stuck = Message(
        contact_id=contact.id,
        direction="out",
        channel="fakesms",
        to_address="+33612345678",
        body="stuck",
        status="queued",
        idempotency_key="stuck-1",
        attempts=0,
        created_at=utcnow() - timedelta(minutes=10),
    )
    db.session.add(stuck)
    db.session.commit()
    runner = mapp.test_cli_runner()
    result = runner.invoke(main, ["messages", "requeue"])
    assert result.exit_code == 0 and "1 message(s) queued" in result.output
    assert [m.body for m in fake.sent] == ["stuck"]
    worker = runner.invoke(main, ["worker"])
    assert worker.exit_code != 0 and "CRM_CELERY_BROKER_URL" in worker.output


def test_preview_and_compose_page(mclient: Any, fake: FakeChannels) -> None:
    contact = _consenting()
    preview = mclient.post(
        "/api/v1/message-templates/preview",
        json={"contact_id": contact.id, "channel": "fakesms", "body": "Hi {{ contact.first_name }}"},
    )
    assert preview.status_code == 200 and preview.json["body"] == "Hi Julie"
    assert fake.calls == 0

    page = mclient.get(f"/messages/compose?channel=email&ids={contact.id}")
    assert page.status_code == 200 and b"julie@example.org" in page.data
    sent = mclient.post(
        "/messages/compose", data={"channel": "fakesms", "ids": [str(contact.id)], "body": "From the page"}
    )
    assert sent.status_code == 200
    assert [m.body for m in fake.sent] == ["From the page"]
    refused = mclient.post(
        "/messages/compose", data={"channel": "fakesms", "ids": [str(contact.id)], "body": ""}
    )
    assert refused.status_code == 422 and b"send either a body or a template" in refused.data


def _template(key: str, channel: str, language: str, body: str, name: str = "", subject: Any = None) -> Any:
    from crmcore.services.message_templates import create_template

    return create_template(
        {"key": key, "channel": channel, "language": language, "name": name, "body": body, "subject": subject}
    )


def test_compose_offers_the_templates_of_its_channel(mclient: Any, fake: FakeChannels) -> None:
    import re

    contact = _consenting(language="en")
    _template("reminder", "fakesms", "fr", "Rappel {{ contact.first_name }}", name="Rappel")
    _template("reminder", "fakesms", "en", "Reminder {{ contact.first_name }}", name="Reminder")
    _template("promo", "fakesms", "en", "Promo")
    _template("newsletter", "email", "en", "News", name="Newsletter", subject="News")

    page = mclient.get(f"/messages/compose?channel=fakesms&ids={contact.id}").get_data(as_text=True)
    select = re.search(r'<select id="compose-template" name="template">(.*?)</select>', page, re.S).group(1)
    assert re.findall(r'<option value="([^"]*)"', select) == ["", "promo", "reminder"]
    assert ">Reminder (reminder) · EN, FR<" in select and ">promo · EN<" in select
    assert 'name="template" maxlength' not in page  # no free-text key any more

    email_page = mclient.get(f"/messages/compose?channel=email&ids={contact.id}").get_data(as_text=True)
    email_select = re.search(
        r'<select id="compose-template" name="template">(.*?)</select>', email_page, re.S
    )
    assert re.findall(r'<option value="([^"]*)"', email_select.group(1)) == ["", "newsletter"]

    # The chosen template is kept when the page comes back (here: a preview).
    preview = mclient.post(
        "/messages/compose",
        data={"channel": "fakesms", "ids": [str(contact.id)], "template": "reminder", "action": "preview"},
    )
    assert preview.status_code == 200
    html = preview.get_data(as_text=True)
    assert '<option value="reminder" selected>' in html
    assert '<pre id="compose-preview-body">Reminder Julie</pre>' in html
    assert 'id="compose-preview-language">English<' in html
    assert fake.calls == 0  # a preview sends nothing

    sent = mclient.post(
        "/messages/compose", data={"channel": "fakesms", "ids": [str(contact.id)], "template": "reminder"}
    )
    assert sent.status_code == 200
    assert [m.body for m in fake.sent] == ["Reminder Julie"]


def test_compose_without_templates_and_preview_errors(mclient: Any, fake: FakeChannels) -> None:
    contact = _consenting(language="fr")
    page = mclient.get(f"/messages/compose?channel=fakesms&ids={contact.id}").get_data(as_text=True)
    assert 'id="compose-no-templates"' in page and 'href="/admin/message-templates"' in page

    preview = mclient.post(
        "/messages/compose",
        data={
            "channel": "fakesms",
            "ids": [str(contact.id)],
            "body": "Salut {{ contact.first_name }}",
            "action": "preview",
        },
    )
    assert preview.status_code == 200 and "Salut Julie" in preview.get_data(as_text=True)
    unknown = mclient.post(
        "/messages/compose",
        data={
            "channel": "fakesms",
            "ids": [str(contact.id)],
            "body": "{{ contact.nope }}",
            "action": "preview",
        },
    )
    assert unknown.status_code == 422 and b"unknown placeholder" in unknown.data
    nobody = mclient.post("/messages/compose", data={"channel": "fakesms", "body": "Hi", "action": "preview"})
    assert nobody.status_code == 422 and b"select at least one contact" in nobody.data
    assert fake.calls == 0


def test_the_sms_compose_page_offers_sms_templates(crm_app_factory: Any) -> None:
    import re

    from crmcore.services.users import create_token, create_user

    application = crm_app_factory(PLUGINS=["sms"])
    with application.app_context():
        if "sms" not in application.extensions["crm"].channels:
            pytest.skip("crm-sms is not installed")
        boss = create_user("sms-boss@example.com", None, is_admin=True)
        _row, token = create_token(boss.id, "test")
        contact = _consenting()
        _template("hello", "sms", "en", "Hello {{ contact.first_name }}", name="Hello")
        _template("welcome", "email", "en", "Welcome", subject="Welcome")
        test_client = application.test_client()
        test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        page = test_client.get(f"/plugins/sms/compose?channel=sms&ids={contact.id}").get_data(as_text=True)
    select = re.search(r'<select id="compose-template" name="template">(.*?)</select>', page, re.S).group(1)
    assert re.findall(r'<option value="([^"]*)"', select) == ["", "hello"]


def test_concurrent_workers_send_a_message_once(mapp: Any, fake: FakeChannels) -> None:
    import threading

    from crmcore.extensions import db
    from crmcore.models import Message
    from crmcore.services.messaging import deliver

    contact = _consenting()
    message = Message(
        contact_id=contact.id,
        direction="out",
        channel="fakesms",
        to_address="+33612345678",
        body="race",
        status="queued",
        idempotency_key="race-1",
        attempts=0,
    )
    db.session.add(message)
    db.session.commit()
    message_id = message.id
    db.session.remove()
    barrier = threading.Barrier(4)
    states: list[str] = []

    def worker() -> None:
        with mapp.app_context():
            barrier.wait()
            states.append(deliver(message_id).state)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # One claim wins; the others find it sent (skipped) or still held by the winner (retry later).
    assert len(states) == 4 and states.count("sent") == 1
    assert set(states) <= {"sent", "skipped", "retry"}
    assert [m.body for m in fake.sent] == ["race"]

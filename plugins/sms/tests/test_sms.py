"""crm-sms against a fake Twilio API on 127.0.0.1: consent, sending, retries, signed callbacks, STOP."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from crm_sms.segments import count_segments
from crm_sms.views import stop_keyword
from twilio.request_validator import RequestValidator


def _contact(sms: bool = True, whatsapp: bool = False, **fields: Any) -> Any:
    from crmcore.services.contacts import create_contact

    data = {
        "kind": "person",
        "first_name": "Paul",
        "last_name": "Morel",
        "language": "fr",
        "phones": [{"number": "06 12 34 56 78", "sms": sms, "whatsapp": whatsapp}],
        **fields,
    }
    return create_contact(data, None, "api")


def _signed_post(client: Any, url: str, params: dict[str, str], token: str, **headers: str) -> Any:
    signature = RequestValidator(token).compute_signature(url, params)
    parts = urlsplit(url)
    return client.post(
        parts.path,
        data=params,
        base_url=f"{parts.scheme}://{parts.netloc}",
        headers={"X-Twilio-Signature": signature, **headers},
    )


def test_consent_off_is_refused_and_nothing_reaches_twilio(sms_client: Any, fake_twilio: Any) -> None:
    contact = _contact(sms=False)
    response = sms_client.post(
        f"/api/v1/contacts/{contact.id}/messages", json={"channel": "sms", "body": "Bonjour"}
    )
    assert response.status_code == 422
    assert response.json["reason"] == "no_target"
    response = sms_client.post(
        f"/api/v1/contacts/{contact.id}/messages",
        json={"channel": "sms", "to": "+33612345678", "body": "Bonjour"},
    )
    assert response.status_code == 422 and response.json["reason"] == "no_consent"
    assert "has not agreed to receive SMS" in response.json["message"]
    assert fake_twilio.requests == []


def test_send_then_delivered_through_a_signed_callback(
    sms_client: Any, fake_twilio: Any, twilio_token: str
) -> None:
    contact = _contact()
    response = sms_client.post(
        f"/api/v1/contacts/{contact.id}/messages",
        json={"channel": "sms", "body": "Bonjour {{ contact.first_name }}"},
    )
    assert response.status_code == 201, response.json
    message = response.json
    assert message["status"] == "queued"  # Twilio queued it
    [created] = fake_twilio.created
    assert message["provider_id"] == created["sid"]
    assert created["to"] == "+33612345678" and created["from"] == "+15005550006"
    assert created["body"] == "Bonjour Paul"
    callback = created["status_callback"]
    assert callback == f"http://localhost/plugins/sms/status/{message['id']}"
    request = fake_twilio.requests[0]
    assert request["headers"]["Authorization"].startswith("Basic ")  # the real client, with our credentials

    for status in ("sent", "delivered"):
        answer = _signed_post(
            sms_client,
            callback,
            {"MessageSid": created["sid"], "MessageStatus": status, "AccountSid": "AC" + "0" * 32},
            twilio_token,
        )
        assert answer.status_code == 204
    after = sms_client.get(f"/api/v1/messages/{message['id']}").json
    assert after["status"] == "delivered" and after["delivered_at"]

    # A late "sent" does not move it back.
    _signed_post(sms_client, callback, {"MessageSid": created["sid"], "MessageStatus": "sent"}, twilio_token)
    assert sms_client.get(f"/api/v1/messages/{message['id']}").json["status"] == "delivered"


def test_failed_delivery_report_keeps_the_error(sms_client: Any, fake_twilio: Any, twilio_token: str) -> None:
    contact = _contact()
    message = sms_client.post(
        f"/api/v1/contacts/{contact.id}/messages", json={"channel": "sms", "body": "x"}
    ).json
    callback = fake_twilio.created[0]["status_callback"]
    params = {"MessageSid": message["provider_id"], "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert _signed_post(sms_client, callback, params, twilio_token).status_code == 204
    after = sms_client.get(f"/api/v1/messages/{message['id']}").json
    assert after["status"] == "undelivered" and "30003" in after["error"]


def test_twilio_500_then_success_sends_exactly_one(sms_client: Any, fake_twilio: Any) -> None:
    fake_twilio.errors = [500]
    contact = _contact()
    response = sms_client.post(
        f"/api/v1/contacts/{contact.id}/messages", json={"channel": "sms", "body": "once"}
    )
    assert response.status_code == 201
    assert response.json["attempts"] == 2
    assert response.json["status"] == "queued" and response.json["error"] is None
    assert len(fake_twilio.requests) == 2
    assert len(fake_twilio.created) == 1
    assert response.json["provider_id"] == fake_twilio.created[0]["sid"]

    from crmcore.services.messaging import deliver

    assert deliver(response.json["id"]).state == "skipped"  # a retry of a sent message does nothing
    assert len(fake_twilio.requests) == 2


def test_twilio_400_is_not_retried(sms_client: Any, fake_twilio: Any) -> None:
    fake_twilio.errors = [400]
    contact = _contact()
    response = sms_client.post(
        f"/api/v1/contacts/{contact.id}/messages", json={"channel": "sms", "body": "x"}
    )
    assert response.json["status"] == "failed"
    assert "Twilio answered 400" in response.json["error"]
    assert len(fake_twilio.requests) == 1


def test_twilio_unreachable_is_retried_then_failed(make_sms_app: Any, fake_twilio: Any) -> None:
    from crmcore.services.messaging import send_message

    app = make_sms_app(TWILIO_API_BASE_URL="http://127.0.0.1:9", MESSAGE_MAX_ATTEMPTS=2)
    with app.app_context():
        message = send_message(_contact().id, {"channel": "sms", "body": "x"})
        assert message.status == "failed" and message.attempts == 2
        assert "Twilio could not be reached" in message.error


def test_forged_or_unsigned_callbacks_are_refused(
    sms_client: Any, fake_twilio: Any, twilio_token: str
) -> None:
    contact = _contact()
    message = sms_client.post(
        f"/api/v1/contacts/{contact.id}/messages", json={"channel": "sms", "body": "x"}
    ).json
    callback = fake_twilio.created[0]["status_callback"]
    params = {"MessageSid": message["provider_id"], "MessageStatus": "delivered"}
    path = urlsplit(callback).path

    anonymous = sms_client.application.test_client()
    assert anonymous.post(path, data=params).status_code == 403
    assert anonymous.post(path, data=params, headers={"X-Twilio-Signature": "Zm9yZ2Vk"}).status_code == 403
    wrong_key = _signed_post(anonymous, callback, params, "not-the-token")
    assert wrong_key.status_code == 403
    signed_other = RequestValidator(twilio_token).compute_signature(
        callback, {**params, "MessageStatus": "sent"}
    )
    tampered = anonymous.post(path, data=params, headers={"X-Twilio-Signature": signed_other})
    assert tampered.status_code == 403
    assert (
        anonymous.post("/plugins/sms/inbound", data={"From": "+33612345678", "Body": "STOP"}).status_code
        == 403
    )
    assert sms_client.get(f"/api/v1/messages/{message['id']}").json["status"] == "queued"

    # A genuine callback needs no sign-in.
    assert _signed_post(anonymous, callback, params, twilio_token).status_code == 204


def test_proxy_headers_only_count_when_configured(make_sms_app: Any, twilio_token: str) -> None:
    params = {"From": "+33611111111", "To": "+15005550006", "Body": "hello", "MessageSid": "SM1"}
    public_url = "https://crm.example.com/plugins/sms/inbound"
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "crm.example.com"}
    signature = RequestValidator(twilio_token).compute_signature(public_url, params)

    direct = make_sms_app()
    refused = direct.test_client().post(
        "/plugins/sms/inbound", data=params, headers={"X-Twilio-Signature": signature, **forwarded}
    )
    assert refused.status_code == 403

    proxied = make_sms_app(TWILIO_BEHIND_PROXY="1")
    accepted = proxied.test_client().post(
        "/plugins/sms/inbound", data=params, headers={"X-Twilio-Signature": signature, **forwarded}
    )
    assert accepted.status_code == 200
    assert accepted.mimetype == "text/xml" and "<Response" in accepted.get_data(as_text=True)


@pytest.mark.parametrize("body", ["STOP", "stop", " Arrêt ", "STOP SMS", "arret."])
def test_stop_withdraws_sms_consent(sms_client: Any, twilio_token: str, body: str) -> None:
    from crm_sms.models import OptOut

    from crmcore.extensions import db
    from crmcore.services.history import entries

    contact = _contact(whatsapp=True)
    response = _signed_post(
        sms_client,
        "http://localhost/plugins/sms/inbound",
        {"From": "+33612345678", "To": "+15005550006", "Body": body, "MessageSid": "SMin1"},
        twilio_token,
    )
    assert response.status_code == 200
    phone = sms_client.get(f"/api/v1/contacts/{contact.id}").json["phones"][0]
    assert phone["sms"] is False and phone["whatsapp"] is True  # only the channel that was stopped
    consent = [e for e in entries(contact.id) if e.action == "consent"]
    assert [(e.field, e.old, e.new, e.source) for e in consent][0] == (
        "sms:+33612345678",
        True,
        False,
        "inbound",
    )
    [opt_out] = db.session.query(OptOut).all()
    assert opt_out.contact_ids == [contact.id] and opt_out.phone == "+33612345678"

    log = sms_client.get(f"/api/v1/contacts/{contact.id}/messages").json
    assert [(m["direction"], m["body"]) for m in log] == [("in", body)]
    refused = sms_client.post(f"/api/v1/contacts/{contact.id}/messages", json={"channel": "sms", "body": "x"})
    assert refused.status_code == 422


def test_inbound_from_known_and_unknown_numbers(sms_client: Any, twilio_token: str) -> None:
    from crmcore.extensions import db
    from crmcore.models import Message

    contact = _contact()
    for sid, sender in (("SMa", "+33612345678"), ("SMb", "+33700000000"), ("SMa", "+33612345678")):
        response = _signed_post(
            sms_client,
            "http://localhost/plugins/sms/inbound",
            {"From": sender, "To": "+15005550006", "Body": "Bonjour", "MessageSid": sid},
            twilio_token,
        )
        assert response.status_code == 200
    rows = db.session.query(Message).order_by(Message.id).all()
    assert [(m.contact_id, m.provider_id, m.status) for m in rows] == [
        (contact.id, "SMa", "received"),
        (None, "SMb", "received"),
    ]
    phone = sms_client.get(f"/api/v1/contacts/{contact.id}").json["phones"][0]
    assert phone["sms"] is True  # "Bonjour" is not an opt-out


def test_whatsapp_goes_to_the_whatsapp_address(make_sms_app: Any, fake_twilio: Any) -> None:
    from crmcore.services.messaging import send_message

    app = make_sms_app(TWILIO_MESSAGING_SERVICE_SID="MG" + "1" * 32)
    with app.app_context():
        message = send_message(_contact(sms=False, whatsapp=True).id, {"channel": "whatsapp", "body": "hi"})
    assert message.status == "queued"
    form = fake_twilio.requests[0]["form"]
    assert form["To"] == "whatsapp:+33612345678"
    assert form["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in form


def test_bulk_sms(sms_client: Any, fake_twilio: Any) -> None:
    ok = _contact()
    no = _contact(sms=False, phones=[{"number": "06 98 76 54 32", "sms": False}])
    response = sms_client.post(
        "/api/v1/messages/bulk",
        json={"ids": [ok.id, no.id], "channel": "sms", "body": "Promo {{ contact.last_name }}"},
    )
    assert response.status_code == 200
    assert response.json["counts"] == {"queued": 1, "refused": 1}
    assert [c["body"] for c in fake_twilio.created] == ["Promo Morel"]


def test_actions_and_compose_page(sms_app: Any, sms_client: Any, fake_twilio: Any) -> None:
    contact = _contact()
    actions = {a["key"]: a for a in sms_client.get(f"/api/v1/contacts/{contact.id}/actions?lang=fr").json}
    assert actions["send_sms"]["label"] == "Envoyer un SMS"
    assert actions["send_sms"]["url"] == f"/plugins/sms/compose?channel=sms&ids={contact.id}"
    script = sms_client.get("/plugins/sms/static/segments.js")
    assert script.status_code == 200 and b"countSegments" in script.data
    page = sms_client.get(actions["send_sms"]["url"])
    assert page.status_code == 200
    assert b'data-sms-counter="sms-counter"' in page.data and b"segments.js" in page.data
    sent = sms_client.post(
        "/plugins/sms/compose", data={"channel": "sms", "ids": [str(contact.id)], "body": "Salut"}
    )
    assert sent.status_code == 200
    assert [c["body"] for c in fake_twilio.created] == ["Salut"]


def test_segments() -> None:
    assert count_segments("").segments == 0
    assert count_segments("a" * 160).to_dict() == {
        "encoding": "GSM-7",
        "characters": 160,
        "units": 160,
        "segments": 1,
        "per_segment": 160,
        "remaining": 0,
    }
    assert count_segments("a" * 161).segments == 2
    assert count_segments("€" * 80).units == 160 and count_segments("€" * 80).segments == 1
    # 152 septets then an escape pair: the pair moves whole to the next segment.
    assert count_segments("a" * 152 + "€" + "a" * 10).segments == 2
    assert count_segments("a" * 153 + "€" * 77).segments == 3
    assert count_segments("ç").encoding == "UCS-2"  # only the capital Ç is in GSM 03.38
    assert count_segments("é" * 160).encoding == "GSM-7"
    assert count_segments("😀" * 35).units == 70 and count_segments("😀" * 35).segments == 1
    # 66 units then a surrogate pair: the pair is not split, it opens the second segment.
    split = count_segments("x" * 66 + "😀" + "x" * 10)
    assert (split.units, split.segments, split.remaining) == (78, 2, 67 - 12)
    assert stop_keyword("Arrêt!") == "ARRET" and stop_keyword("stop please") is None


def test_compose_box_counts_like_the_server() -> None:
    import json
    import shutil
    import subprocess
    from pathlib import Path

    import crm_sms

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = Path(crm_sms.__file__).parent / "static" / "segments.js"
    samples = ["", "Bonjour", "a" * 161, "€" * 81, "a" * 152 + "€" + "a", "ç" * 71, "😀" * 40, "[x]{y}~" * 30]
    program = (
        f"const s=require({json.dumps(str(script))});"
        f"console.log(JSON.stringify({json.dumps(samples)}.map(s.countSegments)))"
    )
    out = subprocess.run([node, "-e", program], capture_output=True, text=True, check=True, timeout=30).stdout
    assert json.loads(out) == [count_segments(text).to_dict() for text in samples]


def test_segments_endpoint(sms_client: Any) -> None:
    response = sms_client.post("/plugins/sms/segments", json={"body": "Bonjour €"})
    assert response.json["segments"] == 1 and response.json["units"] == 10
    assert sms_client.post("/plugins/sms/segments", json={}).status_code == 422


def test_sms_through_a_redis_worker(make_sms_app: Any, fake_twilio: Any, twilio_token: str) -> None:
    import time
    import uuid

    import redis
    from celery.contrib.testing.worker import start_worker

    from crmcore.extensions import db
    from crmcore.jobs import celery_app
    from crmcore.models import Message
    from crmcore.services.messaging import send_message

    broker = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(broker, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"Redis is not reachable at {broker}")
    queue = f"crm-sms-test-{uuid.uuid4().hex[:12]}"
    fake_twilio.errors = [503]
    app = make_sms_app(CELERY_BROKER_URL=broker, CELERY_QUEUE=queue, MESSAGE_RETRY_BACKOFF="0.1")
    try:
        with app.app_context():
            message = send_message(_contact().id, {"channel": "sms", "body": "via redis"})
            assert message.status == "queued" and message.provider_id is None
            with start_worker(celery_app(app), pool="solo", perform_ping_check=False, shutdown_timeout=10):
                deadline = time.monotonic() + 30
                while True:
                    db.session.rollback()
                    row = db.session.get(Message, message.id, populate_existing=True)
                    if row.provider_id or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
            assert row.provider_id == fake_twilio.created[0]["sid"] and row.attempts == 2
            assert len(fake_twilio.requests) == 2 and len(fake_twilio.created) == 1
            client = app.test_client()
            answer = _signed_post(
                client,
                fake_twilio.created[0]["status_callback"],
                {"MessageSid": row.provider_id, "MessageStatus": "delivered"},
                twilio_token,
            )
            assert answer.status_code == 204
            db.session.refresh(row)
            assert row.status == "delivered"
    finally:
        client_redis = redis.Redis.from_url(broker)
        leftovers = list(client_redis.scan_iter(match=f"*{queue}*"))
        if leftovers:
            client_redis.delete(*leftovers)
        client_redis.close()

"""Fixtures for crm-sms tests: a fake Twilio API on 127.0.0.1 and an app pointed at it.

The real ``twilio`` client is used (``environment={}``); only its API base URL changes. The fake
server records every request and answers errors on demand.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token"
FROM = "+15005550006"
PUBLIC_URL = "http://localhost"


class FakeTwilio:
    """Answers ``POST /2010-04-01/Accounts/{sid}/Messages.json`` like Twilio does."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []
        #: Statuses to answer with, one per request, before answering normally.
        self.errors: list[int] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, payload = fake.answer(self.path, form, dict(self.headers))
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, path: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append({"path": path, "form": form, "headers": headers})
            if not path.endswith(f"/Accounts/{ACCOUNT_SID}/Messages.json"):
                return 404, {"code": 20404, "message": "not found", "status": 404}
            if self.errors:
                status = self.errors.pop(0)
                return status, {"code": 20000 + status, "message": f"fake error {status}", "status": status}
            message = {
                "sid": "SM" + uuid.uuid4().hex,
                "account_sid": ACCOUNT_SID,
                "status": "queued",
                "to": form.get("To"),
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form.get("Body"),
                "num_segments": "1",
                "error_code": None,
                "error_message": None,
                "direction": "outbound-api",
                "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/x.json",
            }
            self.created.append({**message, "status_callback": form.get("StatusCallback")})
            return 201, message

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_twilio(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    fake = FakeTwilio()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def sms_config(fake: FakeTwilio, **extra: Any) -> dict[str, Any]:
    return {
        "PLUGINS": ["sms"],
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM": FROM,
        "TWILIO_API_BASE_URL": fake.url,
        "TWILIO_TIMEOUT": "5",
        "PUBLIC_URL": PUBLIC_URL,
        "MESSAGE_MAX_ATTEMPTS": 3,
        **extra,
    }


@pytest.fixture
def sms_app(crm_app_factory: Any, fake_twilio: FakeTwilio) -> Iterator[Any]:
    application = crm_app_factory(**sms_config(fake_twilio))
    with application.app_context():
        yield application


def authenticated_client(app: Any, admin: bool = True) -> Any:
    from crmcore.services.users import create_token, create_user

    user = create_user(f"{uuid.uuid4().hex[:8]}@example.com", None, is_admin=admin, name="Sam Sender")
    _row, token = create_token(user.id, "test")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


@pytest.fixture
def sms_client(sms_app: Any) -> Any:
    return authenticated_client(sms_app)


@pytest.fixture
def make_sms_app(crm_app_factory: Any, fake_twilio: FakeTwilio) -> Any:
    """``make_sms_app(**config)`` -> an app with crm-sms pointed at the fake Twilio (context not pushed)."""

    def make(**extra: Any) -> Any:
        return crm_app_factory(**sms_config(fake_twilio, **extra))

    return make


@pytest.fixture
def client_for() -> Any:
    """``client_for(app, admin=True)`` -> a test client with a fresh user's API token."""
    return authenticated_client


@pytest.fixture
def twilio_token() -> str:
    return AUTH_TOKEN

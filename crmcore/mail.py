"""SMTP delivery, one place for every sender (the email channel, owner notifications).

Settings (typed in crmcore.config.DEFAULTS so ``CRM_SMTP_STARTTLS=0`` means off): ``CRM_SMTP_HOST``,
``CRM_SMTP_PORT``, ``CRM_SMTP_USER``/``CRM_SMTP_PASSWORD`` (login when set), ``CRM_SMTP_STARTTLS``,
``CRM_SMTP_SSL`` (implicit TLS, e.g. port 465), ``CRM_SMTP_TIMEOUT`` (seconds), ``CRM_MAIL_FROM``,
``CRM_MAIL_FROM_NAME``.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import Any

from flask import current_app


class MailError(RuntimeError):
    """The SMTP server refused or could not be reached; ``retryable`` says whether trying later may help."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def sender_address() -> str:
    return str(current_app.config.get("MAIL_FROM") or "")


def build_message(
    to: Sequence[str],
    subject: str,
    body: str,
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    config = current_app.config
    sender = sender_address() or "crmcore@localhost"
    domain = sender.rsplit("@", 1)[-1].strip("> ") or "localhost"
    message = EmailMessage()
    message["From"] = formataddr((config.get("MAIL_FROM_NAME") or "", sender))
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = f"<{message_id}@{domain}>" if message_id else make_msgid(domain=domain)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message


def _error(exc: smtplib.SMTPException) -> MailError:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _text in exc.recipients.values()]
        detail = "; ".join(
            f"{rcpt}: {code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
            for rcpt, (code, text) in exc.recipients.items()
        )
        return MailError(f"recipient refused: {detail}", retryable=not (codes and max(codes) >= 500))
    if isinstance(exc, (smtplib.SMTPConnectError, smtplib.SMTPServerDisconnected)):
        return MailError(f"SMTP server unavailable: {exc}", retryable=True)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return MailError(f"SMTP server does not support what is configured: {exc}", retryable=False)
    code = getattr(exc, "smtp_code", None)
    if isinstance(code, int):
        raw = getattr(exc, "smtp_error", b"")
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        # 4xx: temporary (greylisting, mailbox busy); 5xx: permanent.
        return MailError(f"SMTP error {code}: {text}", retryable=code < 500)
    return MailError(f"SMTP error: {exc}", retryable=True)


def send(message: EmailMessage) -> None:
    """Deliver ``message``; raises :class:`MailError` (retryable for network trouble and 4xx answers)."""
    config = current_app.config
    host = config.get("SMTP_HOST") or "localhost"
    use_ssl = bool(config.get("SMTP_SSL"))
    port = int(config.get("SMTP_PORT") or (465 if use_ssl else 25))
    kwargs: dict[str, Any] = {"timeout": float(config.get("SMTP_TIMEOUT") or 30)}
    if use_ssl:
        kwargs["context"] = ssl.create_default_context()
    smtp_class: Any = smtplib.SMTP_SSL if use_ssl else smtplib.SMTP
    try:
        with smtp_class(host, port, **kwargs) as smtp:
            if config.get("SMTP_STARTTLS") and not use_ssl:
                smtp.starttls(context=ssl.create_default_context())
            if config.get("SMTP_USER"):
                smtp.login(config["SMTP_USER"], config.get("SMTP_PASSWORD") or "")
            smtp.send_message(message)
    except smtplib.SMTPException as exc:
        raise _error(exc) from exc
    except OSError as exc:  # refused connection, DNS, timeout: try again later
        raise MailError(f"cannot reach the SMTP server {host}:{port}: {exc}", retryable=True) from exc

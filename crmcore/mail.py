"""Sending email over SMTP with the settings in config (CRM_SMTP_HOST, CRM_SMTP_PORT, CRM_SMTP_USER,
CRM_SMTP_PASSWORD, CRM_SMTP_STARTTLS, CRM_SMTP_SSL, CRM_SMTP_TIMEOUT, CRM_MAIL_FROM)."""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import make_msgid

from flask import current_app


class MailError(RuntimeError):
    """The SMTP server refused or could not be reached; ``retryable`` says whether trying later may help."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def build_message(
    to: Sequence[str],
    subject: str,
    body: str,
    sender: str | None = None,
    html: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    config = current_app.config
    message = EmailMessage()
    message["From"] = sender or config.get("MAIL_FROM") or "crmcore@localhost"
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=(message["From"].rsplit("@", 1)[-1].strip("> ") or "crmcore"))
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def send(message: EmailMessage) -> None:
    """Deliver ``message``; raises :class:`MailError` (retryable for timeouts and 4xx answers)."""
    config = current_app.config
    host = config.get("SMTP_HOST") or "localhost"
    port = int(config.get("SMTP_PORT") or (465 if config.get("SMTP_SSL") else 25))
    timeout = float(config.get("SMTP_TIMEOUT") or 10)
    connect = smtplib.SMTP_SSL if config.get("SMTP_SSL") else smtplib.SMTP
    try:
        with connect(host, port, timeout=timeout) as smtp:
            if config.get("SMTP_STARTTLS"):
                smtp.starttls()
            if config.get("SMTP_USER"):
                smtp.login(config["SMTP_USER"], config.get("SMTP_PASSWORD") or "")
            smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        raise MailError(
            f"SMTP server answered {exc.smtp_code}: {exc.smtp_error!r}", retryable=400 <= exc.smtp_code < 500
        ) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError(
            f"SMTP server refused the recipients: {', '.join(exc.recipients)}", retryable=False
        ) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"cannot deliver through {host}:{port}: {exc}", retryable=True) from exc

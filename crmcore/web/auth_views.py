"""Sign in, sign out, password change and personal API tokens."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from crmcore.auth import public, request_user
from crmcore.errors import CrmError, ValidationError
from crmcore.services import users

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    # Only local paths: never redirect to another site after sign-in.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("web.index")


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    from crmcore.auth import csrf

    error = None
    email = ""
    if request.method == "POST":
        csrf.protect()
        email = request.form.get("email", "")
        try:
            user = users.authenticate(email, request.form.get("password", ""))
        except users.LoginThrottled as exc:
            user, error = (
                None,
                _("Too many failed sign-ins. Try again in a few minutes.") + f" ({exc.message})",
            )
        if user is not None:
            session.clear()
            login_user(user, remember=bool(request.form.get("remember")))
            return redirect(_safe_next(request.args.get("next")))
        error = error or _("Wrong email or password.")
    return render_template("auth/login.html", error=error, email=email), 401 if error else 200


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/language/<lang>", methods=["POST"])
@public
def set_language(lang: str) -> Any:
    from crmcore.auth import csrf

    csrf.protect()
    if lang in ("en", "fr"):
        session["lang"] = lang
        # A public view: request_user() is not set here, the session still knows who is signed in.
        if current_user.is_authenticated:
            users.update_user(current_user.id, language=lang)
    return redirect(
        _safe_next(request.form.get("next") or request.referrer and urlsplit(request.referrer).path)
    )


@bp.route("/account", methods=["GET", "POST"])
def account() -> Any:
    user = request_user()
    assert user is not None
    errors: dict[str, list[str]] = {}
    new_token = None
    if request.method == "POST":
        action = request.form.get("action")
        try:
            if action == "password":
                if request.form.get("new_password") != request.form.get("confirm_password"):
                    raise ValidationError({"confirm_password": [_("The two passwords differ.")]})
                users.set_password(
                    user.id,
                    request.form.get("new_password", ""),
                    current_password=request.form.get("current_password", ""),
                )
                login_user(users.get_user(user.id))  # the session follows the new password
                flash(_("Password changed."), "success")
            elif action == "create_token":
                _row, new_token = users.create_token(user.id, request.form.get("token_name", ""))
            elif action == "revoke_token":
                users.revoke_token(int(request.form.get("token_id", "0") or 0), user_id=user.id)
                flash(_("Token revoked."), "success")
        except ValidationError as exc:
            errors = exc.errors
        except CrmError as exc:
            flash(exc.message, "error")
    return render_template(
        "auth/account.html", user=user, tokens=users.list_tokens(user.id), errors=errors, new_token=new_token
    )

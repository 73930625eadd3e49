"""Who is asking, decided in one place for every request.

* API (``/api/...``): ``Authorization: Bearer <token>``, or the browser session (then unsafe methods
  need the CSRF token in ``X-CSRFToken``). Anonymous calls get 401. The OpenAPI document and docs are public.
* Pages: the Flask-Login session; anonymous visitors are sent to the sign-in page.
* Views marked :func:`public` (sign-in page, webhooks checked by signature) skip both.

Routes contributed by plugins are covered too: protection is the default, not something to remember.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, has_request_context, jsonify, redirect, request, url_for
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect

from crmcore.models import User

F = TypeVar("F", bound=Callable[..., Any])
_PUBLIC = "_crm_public"
PUBLIC_ENDPOINTS = {
    "static",
    "swagger_ui_static.static",
    "api-docs.openapi_json",
    "api-docs.openapi_swagger_ui",
}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

csrf = CSRFProtect()


def public(view: F) -> F:
    """Mark a view as reachable without signing in (it must then check its caller itself, e.g. a signature)."""
    setattr(view, _PUBLIC, True)
    return view


def request_user() -> User | None:
    """The acting user of this request, or None outside a request (CLI, jobs: the system)."""
    if not has_request_context():
        return None
    return g.get("crm_user")


def _is_public(endpoint: str | None) -> bool:
    if endpoint is None or endpoint in PUBLIC_ENDPOINTS or endpoint.endswith(".static"):
        return True
    view = current_app.view_functions.get(endpoint)
    view_class = getattr(view, "view_class", None)
    return bool(getattr(view, _PUBLIC, False) or getattr(view_class, _PUBLIC, False))


def _unauthorized_api(message: str) -> Any:
    response = jsonify({"code": 401, "status": "Unauthorized", "message": message})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="crmcore"'
    return response


def _authenticate() -> Any:
    # Per-request caches (signed-in user, CSRF token, locale) live on g. In production every request
    # has its own app context; when tests share one across requests, start each request afresh.
    g.__dict__.clear()
    g.crm_user = None
    if _is_public(request.endpoint):
        return None
    is_api = request.path.startswith("/api/")
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        from crmcore.services.users import user_for_token

        user = user_for_token(header[7:].strip())
        if user is None:
            return _unauthorized_api("the API token is invalid or revoked")
        g.crm_user = user
        return None  # a token is not sent automatically by browsers: no CSRF check needed
    if current_user.is_authenticated:
        g.crm_user = current_user._get_current_object()
        if request.method not in SAFE_METHODS:
            csrf.protect()
        return None
    if is_api:
        return _unauthorized_api("authentication required: send 'Authorization: Bearer <token>'")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def _guard_contact_routes() -> Any:
    """Any route naming a contact (``contact_id`` in its URL, core or plugin) is checked here, before the
    request body is even read: a contact the caller may not see answers 404, exactly like a missing one.
    Write permission is checked by the services (403)."""
    contact_id = (request.view_args or {}).get("contact_id")
    if contact_id is None or not isinstance(contact_id, int) or _is_public(request.endpoint):
        return None
    from crmcore.services.access import is_visible

    if is_visible(contact_id, request_user()):
        return None
    if request.path.startswith("/api/"):
        return jsonify(
            {"code": 404, "status": "Not Found", "message": f"contact {contact_id} not found"}
        ), 404
    from flask import abort

    abort(404)


def init_auth(app: Flask) -> None:
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    # Behind HTTPS set CRM_SECURE_COOKIES=1 so cookies never travel in clear.
    secure = bool(app.config.get("SECURE_COOKIES"))
    app.config["SESSION_COOKIE_SECURE"] = secure
    app.config["REMEMBER_COOKIE_SECURE"] = secure
    # CSRF is checked by _authenticate for session-authenticated requests only.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)

    login_manager = LoginManager()
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"

    @login_manager.user_loader
    def _load(session_id: str) -> User | None:
        from crmcore.extensions import db

        user_id, _, fingerprint = session_id.partition(":")
        if not user_id.isdigit():
            return None
        user = db.session.get(User, int(user_id))
        if user is None or not user.active or user.get_id() != session_id:
            return None
        return user

    app.before_request(_authenticate)
    app.before_request(_guard_contact_routes)

    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError) -> Any:
        if request.path.startswith("/api/"):
            return jsonify(
                {
                    "code": 400,
                    "status": "Bad Request",
                    "message": f"CSRF check failed: {error.description} (send X-CSRFToken)",
                }
            ), 400
        return error.description, 400

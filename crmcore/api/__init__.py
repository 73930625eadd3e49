"""The versioned REST API (flask-smorest): ``/api/v1``, OpenAPI at ``/api/openapi.json``, docs at ``/api/docs``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, jsonify, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.routing import BaseConverter
from werkzeug.routing import ValidationError as RoutingValidationError

from crmcore.errors import CrmError

MAX_ID = 2**31 - 1


class IdConverter(BaseConverter):
    """Positive database ids only: anything else is a 404, never a database error."""

    regex = r"[1-9][0-9]{0,9}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise RoutingValidationError()
        return number

    def to_url(self, value: Any) -> str:
        return str(int(value))


def flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Nested marshmallow messages -> ``{"phones[1].number": ["..."]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
                path = f"{prefix}[{key}]"
            elif key == "_schema":
                path = prefix or "_record"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            out.update(flatten(value, path))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out.setdefault(prefix or "_record", []).extend(messages)
    elif isinstance(messages, list):
        for index, value in enumerate(messages):
            out.update(flatten(value, f"{prefix}[{index}]"))
    else:
        out.setdefault(prefix or "_record", []).append(str(messages))
    return out


class CrmApi(Api):
    """flask-smorest's Api, with the OpenAPI document built on first request instead of at start-up
    (building it is most of the cost of create_app, and most apps - CLI runs, tests - never serve it)."""

    def register_blueprint(self, blp: Any, *, parameters: Any = None, **options: Any) -> None:
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        self.__dict__.setdefault("_pending_docs", []).append((blp, name, parameters))

    def document(self) -> Any:
        """The apispec document, complete with every registered blueprint."""
        for blp, name, parameters in self.__dict__.pop("_pending_docs", []):
            blp.register_views_in_doc(self, self._app, self.spec, name=name, parameters=parameters)
            self.spec.tag({"name": name, "description": blp.description})
        return self.spec

    def _openapi_json(self) -> Any:
        """The OpenAPI document, with the current custom field definitions under Contact.custom."""
        import copy

        from flask import current_app, json

        from crmcore.services.fields import all_fields, json_schema

        document = copy.deepcopy(self.document().to_dict())
        contact = document.get("components", {}).get("schemas", {}).get("Contact")
        if contact is not None:
            contact["properties"]["custom"]["properties"] = {
                key: json_schema(field_def) for key, field_def in all_fields().items()
            }
        return current_app.response_class(json.dumps(document, indent=2), mimetype="application/json")

    def handle_http_exception(self, error: HTTPException) -> Any:
        payload: dict[str, Any] = {"code": error.code, "status": error.name}
        data = getattr(error, "data", None) or {}
        messages = data.get("messages")
        if messages:
            errors: dict[str, list[str]] = {}
            for location, content in messages.items():
                # The body's fields are named plainly; query arguments keep their location.
                errors.update(flatten(content, "" if location == "json" else ""))
            payload["errors"] = errors
            payload["message"] = "invalid " + ", ".join(
                "body" if location == "json" else "query arguments" if location == "query" else location
                for location in messages
            )
        else:
            payload["message"] = data.get("message") or error.description
        headers = data.get("headers") or {}
        return jsonify(payload), error.code, headers


def crm_error_response(error: CrmError) -> Any:
    payload = {
        "code": error.status,
        "status": HTTP_STATUS_CODES.get(error.status, "Error"),
        **error.to_dict(),
    }
    headers = {}
    current = error.details.get("current")
    if isinstance(current, dict) and isinstance(current.get("version"), int):
        headers["ETag"] = f'"{current["version"]}"'  # a 409/412 says which version to send back
    return jsonify(payload), error.status, headers


def init_api(app: Flask) -> None:
    app.url_map.converters["id"] = IdConverter
    app.config.setdefault("API_TITLE", "crmcore")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "docs")
    # Swagger UI from the swagger-ui-bundle package, served by us: no CDN.
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", "/api/docs/static/")
    # Swagger UI would otherwise send the document to validator.swagger.io.
    app.config.setdefault("OPENAPI_SWAGGER_UI_CONFIG", {"validatorUrl": None})
    app.config.setdefault(
        "API_SPEC_OPTIONS",
        {
            "info": {
                "description": "crmcore REST API. Errors are JSON: {code, status, message, errors: {field: [why]}}."
            },
        },
    )
    api = CrmApi(app)
    app.extensions["crm_api"] = api

    import swagger_ui_bundle

    app.register_blueprint(
        Blueprint(
            "swagger_ui_static",
            __name__,
            static_folder=swagger_ui_bundle.swagger_ui_path,
            static_url_path="/api/docs/static",
        )
    )

    from crmcore.api import admin, contacts, duplicates, interchange, messages, system

    for blueprint in (
        interchange.blp,  # before contacts: /contacts/export is not a contact
        contacts.blp,
        contacts.sub_blp,
        admin.tags_blp,
        admin.fields_blp,
        admin.lookups_blp,
        system.blp,
        messages.blp,
        messages.templates_blp,
        duplicates.blp,
        duplicates.merges_blp,
    ):
        api.register_blueprint(blueprint)

    @app.errorhandler(CrmError)
    def _crm_error(error: CrmError) -> Any:
        if request.path.startswith("/api/"):
            return crm_error_response(error)
        from crmcore.web import crm_error_page

        return crm_error_page(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Any:
        if request.path.startswith("/api/"):
            return api.handle_http_exception(error)
        return error

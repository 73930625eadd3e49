"""Every ``/api/v1`` rule and method fed malformed input: never a 5xx, always a JSON error body.

The rules are read from ``app.url_map`` (plugins' included) and request bodies from the OpenAPI
document, so a new endpoint is covered without touching this file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

HUGE = "x" * 1_000_000
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BAD_IDS = ("0", "-1", "2147483648", "99999999999999999999999", "abc", "1.5", "1e3", "%20", "%00", "0x10")
WRONG = (None, True, False, 0, -1, 2**63, 1.5, "", "zz", [], {}, [None], [{"a": 1}], {"a": {"b": 1}})
RAW_BODIES = (
    b"{",
    b'{"a":',
    b"[1, 2",
    b"\xff\xfe\x00",
    b"null",
    b"[]",
    b"42",
    b'"text"',
    b"true",
    b'{"a": NaN}',
    b'{"a": 1e999}',
    b"{}" * 3,
    b"",
)
BAD_QUERIES = (
    "limit=-1",
    "limit=abc",
    "limit=99999999999999999999",
    "limit=1&limit=2",
    "cursor=%FF%FE",
    "cursor=eyJ4IjoxfQ",
    "cursor=W251bGwsbnVsbF0",
    "sort=%00",
    "sort=-",
    "kind=%00",
    "status[]=x",
    "owner=-5",
    "organization_id=abc",
    "updated_since=2024-13-45",
    "updated_since=9999-12-31T23:59:59%2B99:00",
    "deleted=2",
    "custom.=1",
    "custom.nope=1",
    "lang=zz",
    "kind=secret",
    "q=%00",
    "q=" + "x" * 5000,
    "q=" + quote("+" * 300),
    "q=" + quote("0" * 300),
    "zzz_unknown=1",
    "lang=" + "x" * 10000,
)
_ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def api_rules(app) -> list[Any]:
    return sorted(
        (rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1")), key=lambda r: r.rule
    )


def build(rule, values: dict[str, str]) -> str:
    """The rule's URL with each argument replaced by ``values[name]`` (raw, even if the converter would refuse)."""
    return _ARGUMENT.sub(lambda m: values.get(m.group(2), "1" if m.group(1) == "id" else "x"), rule.rule)


def id_arguments(rule) -> list[str]:
    return [m.group(2) for m in _ARGUMENT.finditer(rule.rule) if m.group(1) == "id"]


class Checker:
    """Sends requests and collects every answer that breaks the rules, to report them all at once."""

    def __init__(self, client) -> None:
        self.client = client
        self.failures: list[str] = []
        self.count = 0

    def send(self, method: str, url: str, **kwargs: Any) -> Any:
        self.count += 1
        label = f"{method} {url[:120]} {str(kwargs.get('data', kwargs.get('json', '')))[:80]!r}"
        try:
            response = self.client.open(url, method=method, **kwargs)
        except Exception as exc:  # noqa: BLE001 - an exception escaping the app is a failure like a 500
            self.failures.append(f"{label}: raised {exc!r}")
            return None
        status = response.status_code
        if status >= 500:
            self.failures.append(f"{label}: {status} {response.get_data(as_text=True)[:200]}")
        elif status >= 400:
            body = response.get_json(silent=True)
            if not isinstance(body, dict) or body.get("code") != status or not body.get("message"):
                self.failures.append(f"{label}: {status} without a JSON error body: {response.data[:200]!r}")
            elif status in (400, 422) and "errors" in body:
                errors = body["errors"]
                if not isinstance(errors, dict) or not all(
                    isinstance(v, list) and all(isinstance(m, str) for m in v) for v in errors.values()
                ):
                    self.failures.append(f"{label}: {status} errors are not {{field: [why]}}: {errors!r}")
        return response

    def report(self) -> None:
        assert not self.failures, f"{len(self.failures)} of {self.count} requests failed:\n" + "\n".join(
            self.failures[:60]
        )


@pytest.fixture
def world(client, app) -> dict[str, str]:
    """One of everything, so ids in URLs point at real rows and deeper code runs."""
    org = client.post("/api/v1/contacts", json={"kind": "organization", "name": "Acme"}).get_json()
    contact = client.post(
        "/api/v1/contacts",
        json={
            "last_name": "Target",
            "emails": [{"address": "t@acme.fr"}],
            "phones": [{"number": "06 12 34 56 78"}],
            "addresses": [{"kind": "main", "city": "Paris"}],
            "tags": ["robust"],
            "organization_id": org["id"],
        },
    ).get_json()
    note = client.post(f"/api/v1/contacts/{contact['id']}/notes", json={"body": "n"}).get_json()
    warning = client.post(f"/api/v1/contacts/{contact['id']}/warnings", json={"message": "w"}).get_json()
    client.post("/api/v1/custom-fields", json={"key": "level", "label_en": "Level", "type": "integer"})
    tag = client.get("/api/v1/tags").get_json()[0]
    values = {
        "contact_id": contact["id"],
        "note_id": note["id"],
        "warning_id": warning["id"],
        "tag_id": tag["id"],
        "key": "level",
    }
    return {name: str(value) for name, value in values.items()}


def ordered(app) -> Iterator[tuple[Any, str]]:
    """Every (rule, method), deletions last so the rows stay there for the other requests."""
    pairs = [(rule, method) for rule in api_rules(app) for method in METHODS]
    return iter(sorted(pairs, key=lambda pair: pair[1] == "DELETE"))


def test_the_api_has_rules(app):
    assert len(api_rules(app)) >= 20


def test_every_rule_and_method_with_plain_requests(client, app, world):
    checker = Checker(client)
    for rule, method in ordered(app):
        url = build(rule, world)
        checker.send(method, url)
        checker.send(method, url, json={})
    checker.report()


def test_bad_ids_in_paths(client, app, world):
    checker = Checker(client)
    for rule, method in ordered(app):
        for argument in id_arguments(rule):
            for bad in BAD_IDS:
                response = checker.send(method, build(rule, {**world, argument: bad}))
                if response is not None and response.status_code not in (404, 405):
                    checker.failures.append(
                        f"{method} {rule.rule} with {argument}={bad}: {response.status_code}"
                    )
            # A well-formed id of nothing is a 404 too.
            response = checker.send(method, build(rule, {**world, argument: "2147483647"}), json={})
            if response is not None and response.status_code not in (404, 405, 422):
                checker.failures.append(
                    f"{method} {rule.rule} with {argument} missing: {response.status_code}"
                )
    checker.report()


def test_malformed_and_non_object_bodies(client, app, world):
    checker = Checker(client)
    for rule, method in ordered(app):
        if method in ("GET", "DELETE"):
            continue
        url = build(rule, world)
        for raw in RAW_BODIES:
            checker.send(method, url, data=raw, content_type="application/json")
        checker.send(method, url, data="last_name=x", content_type="application/x-www-form-urlencoded")
        checker.send(method, url, data=b"\x00" * 100, content_type="application/octet-stream")
    checker.report()


# -- bodies built from the OpenAPI document --------------------------------------------------------


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "allOf" in schema:
        merged: dict[str, Any] = {"type": "object", "properties": {}}
        for part in schema["allOf"]:
            merged["properties"].update(resolve(spec, part).get("properties", {}))
        return merged
    return schema


def fill(spec: dict[str, Any], schema: dict[str, Any], value: Any, depth: int = 0) -> Any:
    """A body shaped like ``schema`` whose every leaf is ``value``."""
    schema = resolve(spec, schema)
    if depth > 4:
        return value
    if schema.get("type") == "array" or "items" in schema:
        return [fill(spec, schema.get("items", {}), value, depth + 1)]
    if schema.get("properties"):
        return {
            name: fill(spec, sub, value, depth + 1)
            for name, sub in schema["properties"].items()
            if not resolve(spec, sub).get("readOnly")
        }
    if schema.get("type") == "object" or "additionalProperties" in schema:
        return {"k": value}
    return value


def swapped(schema_type: str | None) -> Any:
    """A value of another type than ``schema_type``."""
    return {
        "string": 12345,
        "integer": "twelve",
        "number": "twelve",
        "boolean": "maybe",
        "array": {"a": 1},
    }.get(schema_type or "", ["wrong"])


def request_schemas(app, client) -> Iterator[tuple[Any, str, dict[str, Any], dict[str, Any]]]:
    spec = client.get("/api/openapi.json").get_json()
    for rule, method in ordered(app):
        path = _ARGUMENT.sub(lambda m: "{" + m.group(2) + "}", rule.rule)
        operation = spec["paths"].get(path, {}).get(method.lower())
        if not operation:
            continue
        content = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if content:
            yield rule, method, spec, resolve(spec, content["schema"])


def test_wrong_types_unknown_fields_and_huge_strings(client, app, world):
    checker = Checker(client)
    seen = 0
    for rule, method, spec, schema in request_schemas(app, client):
        seen += 1
        url = build(rule, world)
        for value in WRONG:
            checker.send(method, url, json=fill(spec, schema, value))
        checker.send(method, url, json={"zz_unknown_field": 1})
        checker.send(method, url, json={**fill(spec, schema, "x"), "zz_unknown_field": {"deep": [1]}})
        for name, sub in schema.get("properties", {}).items():
            checker.send(method, url, json={name: swapped(resolve(spec, sub).get("type"))})
        checker.send(method, url, json=fill(spec, schema, HUGE))  # every string 1 MB at once
    assert seen >= 10, "the OpenAPI document should describe the request bodies"
    checker.report()


def test_bad_query_arguments(client, app, world):
    checker = Checker(client)
    for rule in api_rules(app):
        if "GET" not in rule.methods:
            continue
        url = build(rule, world)
        for query in BAD_QUERIES:
            checker.send("GET", f"{url}?{query}")
    checker.report()


def test_huge_query_string(client):
    response = client.get("/api/v1/contacts?q=" + HUGE)
    assert response.status_code == 422
    assert "q" in response.get_json()["errors"]


def test_huge_photo_is_refused(client, world):
    response = client.put(
        f"/api/v1/contacts/{world['contact_id']}/photo",
        data=b"\xff\xd8" + b"\x00" * (10 * 1024 * 1024 + 1),
        content_type="image/jpeg",
    )
    assert response.status_code in (413, 422)
    assert response.get_json()["code"] == response.status_code


def test_json_errors_name_the_field(client):
    response = client.post("/api/v1/contacts", json={"last_name": ["x"], "emails": [{"address": 5}]})
    assert response.status_code == 422
    body = response.get_json()
    assert set(body["errors"]) == {"last_name", "emails[0].address"}
    assert body["status"] == "Unprocessable Entity"
    response = client.post("/api/v1/contacts", data=b"{", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["code"] == 400


# -- documentation ---------------------------------------------------------------------------------


def test_openapi_document(anonymous_client):
    response = anonymous_client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    for path in (
        "/api/v1/contacts",
        "/api/v1/contacts/{contact_id}",
        "/api/v1/contacts/{contact_id}/history",
        "/api/v1/contacts/{contact_id}/related",
        "/api/v1/contacts/{contact_id}/restore",
        "/api/v1/tags",
        "/api/v1/tags/merge",
        "/api/v1/custom-fields",
        "/api/v1/roles",
        "/api/v1/phone-types",
        "/api/v1/origins",
        "/api/v1/salutations",
    ):
        assert path in spec["paths"], path
    assert spec["info"]["version"] == "v1"
    json.dumps(spec)


def test_docs_page_loads_without_external_urls(anonymous_client):
    response = anonymous_client.get("/api/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "swagger-ui" in html
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), (
        "external URL in the page"
    )
    assert '"validatorUrl": null' in html  # no call to validator.swagger.io
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) >= 3
    for asset in assets:
        assert asset.startswith("/"), asset
        loaded = anonymous_client.get(asset)
        assert loaded.status_code == 200, asset
        assert len(loaded.data) > 1000
        loaded.close()


def test_a_body_over_the_request_limit_is_refused_before_being_read(crm_app_factory, admin_user):
    from crmcore.services.users import create_token

    app = crm_app_factory(MAX_CONTENT_LENGTH=1024)
    with app.app_context():
        _row, token = create_token(admin_user.id)
        response = app.test_client().post(
            "/api/v1/contacts",
            data=b"x" * 4096,
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 413
    assert response.is_json

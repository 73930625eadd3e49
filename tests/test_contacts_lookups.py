"""The configurable lists: roles, phone types, origins, salutations."""

from __future__ import annotations

import pytest

LISTS = {
    "roles": ("decision_maker", "role"),
    "phone-types": ("mobile", "phone"),
    "origins": ("website", "origin"),
    "salutations": ("mr", "salutation"),
}


@pytest.mark.parametrize("path", LISTS)
def test_defaults_are_listed_in_order(client, path):
    response = client.get(f"/api/v1/{path}")
    assert response.status_code == 200
    values = response.get_json()
    assert values[0]["key"] == LISTS[path][0]
    assert all(v["builtin"] for v in values)
    assert [v["position"] for v in values] == sorted(v["position"] for v in values)
    assert all(v["label_en"] and v["label_fr"] for v in values)


@pytest.mark.parametrize("path", LISTS)
def test_create_relabel_delete(client, path):
    url = f"/api/v1/{path}"
    created = client.post(url, json={"label_en": "Brand New Thing"})
    assert created.status_code == 201
    value = created.get_json()
    assert (value["key"], value["label_fr"], value["builtin"]) == (
        "brand_new_thing",
        "Brand New Thing",
        False,
    )
    assert client.get(url).get_json()[-1]["key"] == "brand_new_thing"  # appended at the end
    assert client.post(url, json={"label_en": "Other", "key": "brand_new_thing"}).status_code == 409
    relabelled = client.patch(f"{url}/brand_new_thing", json={"label_fr": "Tout neuf", "position": 1})
    assert relabelled.status_code == 200
    assert relabelled.get_json()["label_fr"] == "Tout neuf"
    assert client.get(url).get_json()[0]["key"] == "brand_new_thing"
    assert client.delete(f"{url}/brand_new_thing").status_code == 204
    assert client.delete(f"{url}/brand_new_thing").status_code == 404
    assert client.patch(f"{url}/brand_new_thing", json={"label_en": "x"}).status_code == 404


@pytest.mark.parametrize("path", LISTS)
def test_builtin_values_can_be_relabelled_not_deleted(client, path):
    key = LISTS[path][0]
    url = f"/api/v1/{path}/{key}"
    assert client.patch(url, json={"label_en": "Renamed"}).status_code == 200
    response = client.delete(url)
    assert response.status_code == 409
    assert "relabel" in response.get_json()["message"]
    assert key in [v["key"] for v in client.get(f"/api/v1/{path}").get_json()]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"label_en": ""}, "label_en"),
        ({}, "label_en"),
        ({"label_en": "x", "key": "Bad Key"}, "key"),
        ({"label_en": "x", "key": "x" * 61}, "key"),
        ({"label_en": "x", "position": -1}, "position"),
        ({"label_en": "x", "builtin": True}, "builtin"),
    ],
)
def test_bad_values_are_named(client, body, field):
    response = client.post("/api/v1/origins", json=body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    assert client.patch("/api/v1/origins/website", json={"label_en": "  "}).status_code == 422


def test_a_value_in_use_cannot_be_deleted(client):
    for path, body in (("origins", "origin"), ("salutations", "salutation"), ("roles", "role")):
        key = client.post(f"/api/v1/{path}", json={"label_en": f"Custom {body}"}).get_json()["key"]
        contact = {"last_name": "User", body: key}
        if body == "role":
            org = client.post("/api/v1/contacts", json={"kind": "organization", "name": "Org"}).get_json()
            contact["organization_id"] = org["id"]
        assert client.post("/api/v1/contacts", json=contact).status_code == 201
        response = client.delete(f"/api/v1/{path}/{key}")
        assert response.status_code == 409
        assert response.get_json()["used"] == 1


def test_labels_in_either_language_are_accepted_on_contacts(client):
    client.post("/api/v1/origins", json={"label_en": "Podcast", "label_fr": "Balado"})
    response = client.post("/api/v1/contacts", json={"last_name": "L", "origin": "balado"})
    assert response.status_code == 201
    assert response.get_json()["origin"] == "podcast"

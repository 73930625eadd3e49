"""Tags: created on the fly, listed with counts, renamed, merged, deleted, filtered on."""

from __future__ import annotations

API = "/api/v1/contacts"
TAGS = "/api/v1/tags"


def create(client, **fields):
    fields.setdefault("last_name", "Tagged")
    response = client.post(API, json=fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def tags(client):
    response = client.get(TAGS)
    assert response.status_code == 200
    return {t["name"]: t for t in response.get_json()}


def tag_id(client, name):
    return tags(client)[name]["id"]


def test_tags_are_created_on_the_fly(client):
    contact = create(client, tags=["VIP", "Client", " vip ", ""])
    assert contact["tags"] == ["Client", "VIP"]
    assert {name: t["contacts"] for name, t in tags(client).items()} == {"Client": 1, "VIP": 1}


def test_tag_names_match_without_case_or_accents(client):
    first = create(client, tags=["Élite"])
    second = create(client, tags=["elite"])
    assert second["tags"] == ["Élite"]  # the existing tag, with its spelling
    assert list(tags(client)) == ["Élite"]
    assert tags(client)["Élite"]["contacts"] == 2
    found = client.get(f"{API}?tag=ELITE").get_json()["items"]
    assert {c["id"] for c in found} == {first["id"], second["id"]}


def test_counts_ignore_deleted_contacts(client):
    a = create(client, tags=["x"])
    create(client, tags=["x"])
    client.delete(f"{API}/{a['id']}")
    assert tags(client)["x"]["contacts"] == 1
    assert len(client.get(f"{API}?tag=x").get_json()["items"]) == 1


def test_create_tag(client):
    response = client.post(TAGS, json={"name": "  Partner "})
    assert response.status_code == 201
    assert response.get_json()["name"] == "Partner"
    assert response.get_json()["contacts"] == 0
    duplicate = client.post(TAGS, json={"name": "PARTNER"})
    assert duplicate.status_code == 409
    assert duplicate.get_json()["code"] == 409
    for bad in ({"name": ""}, {"name": "   "}, {"name": "x" * 81}, {}, {"name": 3}):
        response = client.post(TAGS, json=bad)
        assert response.status_code == 422, bad
        assert "name" in response.get_json()["errors"]


def test_long_tag_on_a_contact_is_named(client):
    response = client.post(API, json={"last_name": "T", "tags": ["ok", "x" * 81]})
    assert response.status_code == 422
    assert "tags[1]" in response.get_json()["errors"]


def test_rename(client):
    contact = create(client, tags=["prospect chaud"])
    identifier = tag_id(client, "prospect chaud")
    response = client.patch(f"{TAGS}/{identifier}", json={"name": "Hot lead"})
    assert response.status_code == 200
    assert response.get_json()["name"] == "Hot lead"
    assert client.get(f"{API}/{contact['id']}").get_json()["tags"] == ["Hot lead"]
    assert [c["id"] for c in client.get(f"{API}?tag=hot lead").get_json()["items"]] == [contact["id"]]
    # Changing only the case is a rename, not a clash with itself.
    assert client.patch(f"{TAGS}/{identifier}", json={"name": "HOT LEAD"}).status_code == 200


def test_rename_onto_an_existing_tag_is_refused(client):
    create(client, tags=["a", "b"])
    response = client.patch(f"{TAGS}/{tag_id(client, 'a')}", json={"name": "B"})
    assert response.status_code == 409
    assert response.get_json()["existing_id"] == tag_id(client, "b")
    assert client.patch(f"{TAGS}/424242", json={"name": "c"}).status_code == 404


def test_merge(client):
    only_old = create(client, last_name="Old", tags=["customer", "misc"])
    both = create(client, last_name="Both", tags=["customer", "client"])
    only_new = create(client, last_name="New", tags=["client"])
    target = tag_id(client, "client")
    response = client.post(
        f"{TAGS}/merge", json={"source_ids": [tag_id(client, "customer")], "target_id": target}
    )
    assert response.status_code == 200
    assert response.get_json()["name"] == "client"
    assert set(tags(client)) == {"client", "misc"}
    assert tags(client)["client"]["contacts"] == 3
    for contact in (only_old, both, only_new):
        assert "client" in client.get(f"{API}/{contact['id']}").get_json()["tags"]
    assert client.get(f"{API}/{only_old['id']}").get_json()["tags"] == ["client", "misc"]


def test_merge_is_a_change_of_the_contacts(client):
    contact = create(client, tags=["a"])
    create(client, tags=["b"])
    client.post(f"{TAGS}/merge", json={"source_ids": [tag_id(client, "a")], "target_id": tag_id(client, "b")})
    after = client.get(f"{API}/{contact['id']}")
    body = after.get_json()
    assert body["version"] == contact["version"] + 1  # caches and If-Match see the change
    assert after.headers["ETag"] == f'"{body["version"]}"'
    assert body["updated_at"] > contact["updated_at"]  # updated_since sync sees it
    entry = client.get(f"{API}/{contact['id']}/history").get_json()[0]
    assert (entry["action"], entry["field"], entry["old"], entry["new"]) == ("update", "tags", ["a"], ["b"])
    assert entry["revision"] == body["version"]


def test_bad_merges(client):
    create(client, tags=["a", "b"])
    a, b = tag_id(client, "a"), tag_id(client, "b")
    response = client.post(f"{TAGS}/merge", json={"source_ids": [b], "target_id": b})
    assert response.status_code == 422
    assert "source_ids" in response.get_json()["errors"]
    assert client.post(f"{TAGS}/merge", json={"source_ids": [424242], "target_id": b}).status_code == 404
    assert client.post(f"{TAGS}/merge", json={"source_ids": [a], "target_id": 424242}).status_code == 404
    assert client.post(f"{TAGS}/merge", json={"source_ids": [], "target_id": b}).status_code == 422
    assert client.post(f"{TAGS}/merge", json={"source_ids": "a", "target_id": b}).status_code == 422
    assert set(tags(client)) == {"a", "b"}


def test_delete_tag(client):
    contact = create(client, tags=["gone", "kept"])
    assert client.delete(f"{TAGS}/{tag_id(client, 'gone')}").status_code == 204
    after = client.get(f"{API}/{contact['id']}").get_json()
    assert after["tags"] == ["kept"]
    assert after["version"] == contact["version"] + 1
    entry = client.get(f"{API}/{contact['id']}/history").get_json()[0]
    assert (entry["field"], entry["old"], entry["new"]) == ("tags", ["gone"], [])
    assert client.delete(f"{TAGS}/424242").status_code == 404


def test_rename_gives_each_tagged_contact_a_new_version_and_history(client):
    tagged = create(client, tags=["salon"])
    untouched = create(client, tags=["other"])
    response = client.patch(f"{TAGS}/{tag_id(client, 'salon')}", json={"name": "Salon 2025"})
    assert response.status_code == 200
    after = client.get(f"{API}/{tagged['id']}")
    assert after.get_json()["version"] == tagged["version"] + 1
    assert after.headers["ETag"] == f'"{tagged["version"] + 1}"'
    # A client holding the old version cannot overwrite the renamed tag list unknowingly.
    stale = client.patch(f"{API}/{tagged['id']}", json={"job_title": "x"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    entry = client.get(f"{API}/{tagged['id']}/history").get_json()[0]
    assert (entry["field"], entry["old"], entry["new"]) == ("tags", ["salon"], ["Salon 2025"])
    assert client.get(f"{API}/{untouched['id']}").get_json()["version"] == untouched["version"]
    # Renaming to the same name changes nothing.
    client.patch(f"{TAGS}/{tag_id(client, 'Salon 2025')}", json={"name": "Salon 2025"})
    assert client.get(f"{API}/{tagged['id']}").get_json()["version"] == tagged["version"] + 1

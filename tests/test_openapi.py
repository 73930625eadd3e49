"""The API document: served without a CDN, and custom fields described from their single definition."""

import re


def test_custom_fields_appear_in_the_openapi_document(client):
    created = client.post(
        "/api/v1/custom-fields",
        json={
            "key": "loyalty",
            "label_en": "Loyalty level",
            "label_fr": "Fidélité",
            "type": "choice",
            "choices": ["bronze", "silver", "gold"],
            "kinds": ["person"],
        },
    )
    assert created.status_code == 201, created.json
    document = client.get("/api/openapi.json").json
    custom = document["components"]["schemas"]["Contact"]["properties"]["custom"]["properties"]
    assert custom["loyalty"]["enum"] == ["bronze", "silver", "gold"]
    assert custom["loyalty"]["x-kinds"] == ["person"]


def test_swagger_ui_is_served_locally(anonymous_client):
    page = anonymous_client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    external = [
        url
        for url in re.findall(r'(?:src|href)="([^"]+)"', html)
        if url.startswith(("http:", "https:", "//"))
    ]
    assert external == []
    script = re.search(r'src="([^"]*swagger-ui-bundle\.js)"', html).group(1)
    assert anonymous_client.get(script).status_code == 200

def test_app_serves_openapi(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert "/api/v1/contacts" in response.json["paths"]

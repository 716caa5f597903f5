def test_healthz(client):
    assert client.get("/readyz").json == {"status": "ready"}

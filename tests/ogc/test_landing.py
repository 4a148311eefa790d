"""/ogc, /ogc/conformance, /ogc/api and /ogc/api.html: what a client reads first."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from app.api.ogc.factory import CONFORMANCE
from app.main import create_app
from tests.ogc.conftest import Ogc, get

OPENAPI_30 = "application/vnd.oai.openapi+json;version=3.0"


def test_the_landing_page_links_the_service_desc_doc_conformance_and_data(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    r = get(ogc_client, ogc, "/ogc")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    links = {link["rel"]: link for link in r.json()["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(links)
    assert links["service-desc"]["type"] == OPENAPI_30
    assert links["data"]["href"] == "http://testserver/ogc/collections"
    assert all(link["href"].startswith("http://testserver/ogc") for link in links.values())
    for link in links.values():
        assert (
            ogc_client.get(link["href"], headers=ogc.headers("polis", "analyst")).status_code == 200
        )


def test_every_url_needs_a_key_and_takes_it_as_the_password_of_basic(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    r = ogc_client.get("/ogc")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic")
    basic = base64.b64encode(f"qgis:{ogc.token('insyn', 'viewer')}".encode()).decode()
    assert ogc_client.get("/ogc", headers={"Authorization": f"Basic {basic}"}).status_code == 200


def test_conformance_declares_the_classes_built_and_no_others(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    r = get(ogc_client, ogc, "/ogc/conformance")
    assert r.status_code == 200
    declared = set(r.json()["conformsTo"])
    assert declared == set(CONFORMANCE)
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in declared
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in declared
    assert "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2" in declared
    assert not any("html" in c or "cql2-json" in c or "temporal" in c for c in declared)


def test_the_api_document_is_openapi_3_0_and_declares_limit_for_qgis(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    r = get(ogc_client, ogc, "/ogc/api")
    assert r.status_code == 200 and r.headers["content-type"] == OPENAPI_30
    doc = r.json()
    assert doc["openapi"].startswith("3.0")
    limit = doc["components"]["parameters"]["limit"]["schema"]
    assert limit["maximum"] == ogc.settings.max_page_size == 10_000
    assert limit["default"] == 100
    items = doc["paths"]["/ogc/collections/hotspots/items"]["get"]["parameters"]
    assert {"$ref": "#/components/parameters/limit"} in items
    assert {"incident_count", "week", "area", "run", "profile"} <= {p.get("name") for p in items}
    assert doc["servers"] == [{"url": "http://testserver"}]
    assert '"type": "null"' not in r.text and "anyOf" not in r.text  # OpenAPI 3.1 words
    assert not any(p.startswith("/api/v1") for p in doc["paths"])
    rest = ogc_client.get("/openapi.json").json()
    assert not any(p.startswith("/ogc") for p in rest["paths"])


def test_the_api_documentation_page_reads_the_document(ogc: Ogc, ogc_client: TestClient) -> None:
    r = get(ogc_client, ogc, "/ogc/api.html")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "http://testserver/ogc/api" in r.text


def test_unknown_parameters_are_refused_naming_them_but_f_json_is_taken(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    assert get(ogc_client, ogc, "/ogc", f="json").status_code == 200
    for path in ("/ogc", "/ogc/conformance", "/ogc/collections", "/ogc/collections/hotspots"):
        r = get(ogc_client, ogc, path, colour="red")
        assert r.status_code == 400, path
        assert r.headers["content-type"] == "application/problem+json"
        assert "colour" in r.json()["detail"]
    r = get(ogc_client, ogc, "/ogc/conformance", f="xml")
    assert r.status_code == 400 and "f must be" in r.json()["detail"]


def test_links_follow_a_trusted_reverse_proxy_and_the_root_path(ogc: Ogc) -> None:
    proxied = ogc.settings.model_copy(update={"trusted_proxies": ["testclient"]})
    forwarded = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "karta.example.se",
        "X-Forwarded-Prefix": "/lagesbild",
    }
    with TestClient(create_app(proxied)) as client:
        r = client.get("/ogc", headers={**ogc.headers("polis", "analyst"), **forwarded})
        hrefs = [link["href"] for link in r.json()["links"]]
        assert all(h.startswith("https://karta.example.se/lagesbild/ogc") for h in hrefs)
    with TestClient(create_app(ogc.settings)) as client:  # an untrusted peer: headers ignored
        r = client.get("/ogc", headers={**ogc.headers("polis", "analyst"), **forwarded})
        assert r.json()["links"][0]["href"] == "http://testserver/ogc"
    mounted = ogc.settings.model_copy(update={"root_path": "/lagesbild"})
    with TestClient(create_app(mounted)) as client:
        r = client.get("/ogc/collections", headers=ogc.headers("polis", "analyst"))
        assert r.json()["links"][0]["href"] == "http://testserver/lagesbild/ogc/collections"

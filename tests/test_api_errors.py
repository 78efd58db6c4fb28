"""Every error under /api/ is JSON, and the API takes only the content type its schema lists."""

from urllib.parse import urlencode

import pytest
from django.test import Client

from tests.support.organizations import organization_make

BOOTSTRAP = "/api/admin/organizations/bootstrap"


def test_an_api_url_that_matches_no_route_answers_a_json_404(client):
    for url in ("/api/admin/organizations/not-a-uuid/bootstrap", "/api/admin/organizations/1/invitations", "/api/x"):
        response = client.get(url)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "Not found."}


def test_a_page_that_matches_no_route_answers_django_html_404(client):
    response = client.get("/invitations/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.urls("tests.support.failing_urls")
def test_a_server_error_under_the_api_is_json_and_elsewhere_html():
    client = Client(raise_request_exception=False)
    api = client.get("/api/fail")
    assert api.status_code == 500
    assert api["Content-Type"] == "application/json"
    assert api.json() == {"detail": "Server error."}
    page = client.get("/fail")
    assert page.status_code == 500
    assert page["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_the_api_posts_refuse_a_form_encoded_body_with_415(admin_client):
    organization_id = organization_make("Form Clinic", active=True)
    form = {"name": "Form Clinic", "type": "provider", "subdomain": "form-clinic"}
    for url in (BOOTSTRAP, f"/api/admin/organizations/{organization_id}/invitations"):
        encoded = admin_client.post(url, urlencode(form), content_type="application/x-www-form-urlencoded")
        multipart = admin_client.post(url, form)  # the test client's default: multipart/form-data
        for response in (encoded, multipart):
            assert response.status_code == 415, response.content
            assert "Unsupported media type" in response.json()["detail"]


def test_the_schema_lists_only_json_request_bodies_for_the_api_posts(admin_client):
    response = admin_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (BOOTSTRAP, "/api/admin/organizations/{organization_id}/invitations"):
        assert set(paths[path]["post"]["requestBody"]["content"]) == {"application/json"}, path

"""The REST API as a whole: authentication, the WebSocket ticket, the OpenAPI schema.

Each endpoint's own behaviour is in test_rest_messages.py and test_rest_conversations.py.
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.management import call_command
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from imsproject.asgi import application
from messaging.models import WsTicket
from messaging.services.tickets import ws_ticket_redeem
from tests.conftest import token_of
from tests.factories import UserFactory
from tests.messaging.rest_client import api_as, fresh_channel_layer, row_counts, use_fast_password_hashing

TICKET_URL = "/api/ws-ticket/"

ENDPOINTS = [
    ("post", "/api/messages/"),
    ("post", "/api/messages/read/"),
    ("get", "/api/conversations/"),
    ("post", "/api/conversations/"),
    ("get", "/api/conversations/1/messages/"),
    ("post", TICKET_URL),
]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    use_fast_password_hashing(settings)


# --- authentication ----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_every_endpoint_needs_credentials(method, url):
    before = row_counts()

    response = getattr(APIClient(), method)(url, {}, format="json")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    assert row_counts() == before
    assert not WsTicket.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_a_wrong_token_is_refused(method, url):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert getattr(client, method)(url, {}, format="json").status_code == 401


@pytest.mark.django_db
def test_the_token_of_an_inactive_user_is_refused(alice):
    client = api_as(alice)
    alice.is_active = False
    alice.save()

    assert client.get("/api/conversations/").status_code == 401


@pytest.mark.django_db
def test_a_logged_in_browser_session_may_read(alice):
    client = APIClient()
    client.force_login(alice)

    assert client.get("/api/conversations/").status_code == 200


@pytest.mark.django_db
def test_a_session_write_needs_the_csrf_token(alice, bob):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    body = {"to": bob.pk, "msg_type": "text", "content": "hi"}

    forged = client.post("/api/messages/", body, format="json")
    client.get("/admin/login/")  # any page with a form sets the csrftoken cookie
    same_site = client.post(
        "/api/messages/", body, format="json", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value
    )

    assert forged.status_code == 403
    assert same_site.status_code == 201


@pytest.mark.django_db
def test_a_token_request_needs_no_csrf_token(alice, bob):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_of(alice)}")

    response = client.post(
        "/api/messages/", {"to": bob.pk, "msg_type": "text", "content": "hi"}, format="json"
    )

    assert response.status_code == 201


# --- WebSocket ticket --------------------------------------------------------------------


@pytest.mark.django_db
def test_ws_ticket_is_issued_for_thirty_seconds(alice, settings):
    settings.IMS_TICKET_TTL_SECONDS = 30

    response = api_as(alice).post(TICKET_URL)

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"ticket", "expires_at"}
    assert len(body["ticket"]) >= 32
    assert body["expires_at"].endswith("Z")
    expires_at = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(seconds=28) < expires_at - timezone.now() <= dt.timedelta(seconds=30)


@pytest.mark.django_db
def test_ws_ticket_is_single_use(alice):
    ticket = api_as(alice).post(TICKET_URL).json()["ticket"]

    assert ws_ticket_redeem(key=ticket) == alice
    assert ws_ticket_redeem(key=ticket) is None


@pytest.mark.django_db
def test_every_ws_ticket_is_a_new_one(alice):
    client = api_as(alice)

    assert client.post(TICKET_URL).json()["ticket"] != client.post(TICKET_URL).json()["ticket"]


@pytest.mark.django_db
def test_ws_ticket_is_the_callers_own(alice, bob):
    ticket = api_as(bob).post(TICKET_URL).json()["ticket"]

    assert ws_ticket_redeem(key=ticket) == bob


@pytest.mark.django_db(transaction=True)
async def test_ws_ticket_opens_one_websocket_and_only_one():
    fresh_channel_layer()
    try:
        user = await database_sync_to_async(UserFactory)(username="dave")
        client = APIClient()
        await database_sync_to_async(client.force_login)(user)
        response = await database_sync_to_async(client.post)(TICKET_URL)
        ticket = response.json()["ticket"]

        first = WebsocketCommunicator(application, f"/ws/?ticket={ticket}")
        connected, _ = await first.connect(timeout=5)
        try:
            assert connected
            hello = await first.receive_json_from(timeout=5)
            assert hello["type"] == "hello"
            assert hello["user_id"] == user.pk
        finally:
            await first.disconnect(timeout=5)

        second = WebsocketCommunicator(application, f"/ws/?ticket={ticket}")
        connected, _ = await second.connect(timeout=5)
        await second.disconnect(timeout=5)
        assert not connected
    finally:
        fresh_channel_layer()
        # The consumers' ORM calls ran in this thread; an open connection there would keep
        # the test database from being dropped.
        await sync_to_async(connections.close_all, thread_sensitive=True)()


# --- OpenAPI schema ----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_openapi_schema_is_public_and_lists_every_endpoint():
    response = APIClient().get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "IMS API"
    assert set(schema["paths"]) >= {
        "/api/messages/",
        "/api/messages/read/",
        "/api/conversations/",
        "/api/conversations/{conversation_id}/messages/",
        "/api/ws-ticket/",
    }
    sent = schema["components"]["schemas"]["SentMessage"]["properties"]
    assert set(sent) == {
        "msg_id",
        "client_msg_id",
        "conversation_id",
        "sender_id",
        "receiver_id",
        "msg_type",
        "content",
        "mentions",
        "created_at",
        "seq",
    }
    history = schema["paths"]["/api/conversations/{conversation_id}/messages/"]["get"]
    assert {p["name"] for p in history["parameters"]} >= {"cursor", "page_size"}
    assert "tokenAuth" in schema["components"]["securitySchemes"]


def test_the_openapi_schema_is_valid_and_generates_without_warnings():
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=io.StringIO())


@pytest.fixture
def openapi(db) -> dict:
    return APIClient().get("/api/schema/", {"format": "json"}).json()


def operations(document: dict) -> list[tuple[str, str, dict]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_the_openapi_document_offers_json_bodies_only_but_for_the_upload(openapi):
    bodies = {
        (method, path): set(operation["requestBody"]["content"])
        for method, path, operation in operations(openapi)
        if "requestBody" in operation
    }
    assert bodies.pop(("post", "/api/conversations/{conversation_id}/uploads/")) == {"multipart/form-data"}
    assert set(map(frozenset, bodies.values())) == {frozenset({"application/json"})}
    assert all(
        operation["requestBody"]["required"]
        for _, _, operation in operations(openapi)
        if "requestBody" in operation
    )


def test_every_operation_lists_its_401_and_error_bodies_and_answers_no_html(openapi):
    for method, path, operation in operations(openapi):
        responses = operation["responses"]
        assert "401" in responses or not operation.get("security"), (method, path)
        for status, response in responses.items():
            assert "text/html" not in response.get("content", {}), (method, path, status)
            if status.startswith("4") and status != "401":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_the_notification_list_is_documented_as_the_paginated_page_it_is(openapi):
    page = openapi["paths"]["/api/notifications/"]["get"]["responses"]["200"]["content"]["application/json"]
    schema = openapi["components"]["schemas"][page["schema"]["$ref"].rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"next", "previous", "results", "unread"}
    assert schema["properties"]["results"]["items"] == {"$ref": "#/components/schemas/Notification"}


def test_every_id_in_the_document_is_an_integer_from_1_to_2_63(openapi):
    for method, path, operation in operations(openapi):
        for parameter in operation.get("parameters", []):
            if (
                parameter["in"] == "path"
                and parameter["name"].endswith("_id")
                and parameter["name"] != "upload_id"
            ):
                assert parameter["schema"]["minimum"] == 1, (method, path, parameter)
                assert parameter["schema"]["maximum"] == 2**63 - 1, (method, path, parameter)
    for name, schema in openapi["components"]["schemas"].items():
        for field, spec in schema.get("properties", {}).items():
            if field.endswith("_ids") and field != "msg_ids":  # msg_ids are UUIDs
                assert spec["items"]["maximum"] == 2**63 - 1, (name, field)


def test_every_operation_that_takes_a_body_documents_the_413_of_the_body_limit(openapi):
    for method, path, operation in operations(openapi):
        if "requestBody" in operation:
            assert "413" in operation["responses"], (method, path)

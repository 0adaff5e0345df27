"""REST edges as daphne serves them: every error an API client meets is the API's own JSON
body, also for bodies that the server in front of Django could have refused itself."""

from __future__ import annotations

import http.client
import json

import pytest

from messaging.services.conversations import conversation_create_group
from tests.conftest import token_of
from tests.e2e.harness import START_TIMEOUT_SECONDS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BOUNDARY = "fuzz-boundary"


def post_multipart(port: int, path: str, token: str, body: bytes) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=START_TIMEOUT_SECONDS)
    try:
        connection.request(
            "POST",
            path,
            body=body,
            headers={
                "Authorization": f"Token {token}",
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            },
        )
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        connection.close()


def test_a_multipart_body_without_parts_gets_the_apis_json_400_and_a_file_still_uploads(server, alice, bob):
    group = conversation_create_group(creator_id=alice.pk, title="Files", member_ids=[bob.pk])
    path = f"/api/conversations/{group.pk}/uploads/"

    status, content_type, body = post_multipart(
        server.port, path, token_of(alice), f"--{BOUNDARY}--\r\n".encode()
    )
    assert (status, content_type) == (400, "application/json"), body
    assert json.loads(body)["code"] == "bad_request"

    part = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="notes.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\nhello\r\n--{BOUNDARY}--\r\n"
    ).encode()
    status, content_type, body = post_multipart(server.port, path, token_of(alice), part)
    assert (status, content_type) == (201, "application/json"), body
    assert json.loads(body)["name"] == "notes.txt"

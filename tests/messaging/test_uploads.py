"""Uploads: members store files through the storage API, only members read them back,
served files can never run script in our origin, and the size limit holds before the
body is stored."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from messaging.models import Upload
from tests.factories import GroupFactory

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def group(alice, bob):
    return GroupFactory(members=[alice, bob])


def upload(
    client, conversation, name: str, data: bytes, content_type: str = "application/octet-stream", **extra
):
    return client.post(
        f"/api/conversations/{conversation.pk}/uploads/",
        {"file": SimpleUploadedFile(name, data, content_type=content_type)},
        **extra,
    )


def test_a_member_uploads_an_image_and_gets_the_content_of_an_image_message(client, alice, group, media_root):
    client.force_login(alice)

    response = upload(client, group, "team photo.png", PNG, "image/png")

    assert response.status_code == 201
    body = response.json()
    stored = Upload.objects.get()
    assert body == {
        "url": f"/uploads/{stored.pk}/team%20photo.png",
        "name": "team photo.png",
        "size": len(PNG),
        "mime": "image/png",
    }
    assert (media_root / stored.file.name).read_bytes() == PNG
    assert "team photo" not in stored.file.name  # the user's name never reaches the file system


def test_the_type_comes_from_the_bytes_not_from_the_browser(client, alice, group):
    client.force_login(alice)

    claimed_png = upload(client, group, "evil.png", SVG, "image/png").json()
    svg = upload(client, group, "logo.svg", SVG, "image/svg+xml").json()
    renamed_png = upload(client, group, "notes.txt", PNG, "text/plain").json()

    assert claimed_png["mime"] == "application/octet-stream"
    assert svg["mime"] == "image/svg+xml"
    assert renamed_png["mime"] == "image/png"


def test_a_member_reads_an_image_inline_with_headers_that_forbid_script(client, alice, bob, group):
    client.force_login(alice)
    url = upload(client, group, "a.png", PNG).json()["url"]
    client.force_login(bob)

    response = client.get(url)

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("inline")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("name", "data"), [("logo.svg", SVG), ("page.html", b"<script>alert(1)</script>"), ("x.bin", b"\x00\x01")]
)
def test_anything_but_a_raster_image_is_served_as_an_attachment(client, alice, group, name, data):
    client.force_login(alice)
    url = upload(client, group, name, data).json()["url"]

    response = client.get(url)

    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert not response["Content-Type"].startswith("text/html")


def test_a_non_member_gets_404_for_a_file_that_exists(client, alice, carol, group):
    client.force_login(alice)
    url = upload(client, group, "a.png", PNG).json()["url"]
    client.force_login(carol)

    assert client.get(url).status_code == 404


def test_nobody_signed_out_reads_a_file(client, alice, group):
    client.force_login(alice)
    url = upload(client, group, "a.png", PNG).json()["url"]
    client.logout()

    assert client.get(url).status_code in (401, 403)


def test_a_non_member_cannot_upload(client, carol, group):
    client.force_login(carol)

    response = upload(client, group, "a.png", PNG)

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert not Upload.objects.exists()


def test_a_file_over_the_limit_is_refused_and_nothing_is_stored(client, settings, alice, group, media_root):
    settings.IMS_MAX_UPLOAD_BYTES = 1000
    client.force_login(alice)

    # Within the multipart allowance of Content-Length: the upload handler stops it.
    response = upload(client, group, "big.bin", b"x" * 1001)

    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert not Upload.objects.exists()
    assert not [path for path in media_root.rglob("*") if path.is_file()]


def test_a_body_announced_as_too_large_is_refused_before_it_is_read(client, settings, alice, group):
    settings.IMS_MAX_UPLOAD_BYTES = 1000
    client.force_login(alice)

    # The announced length is far more than the body: reading it would fail, so a 413
    # proves the check ran first.
    response = upload(client, group, "a.png", PNG, CONTENT_LENGTH="50000000")

    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert not Upload.objects.exists()


def test_a_file_at_the_limit_is_accepted(client, settings, alice, group):
    settings.IMS_MAX_UPLOAD_BYTES = 1000
    client.force_login(alice)

    assert upload(client, group, "ok.bin", b"x" * 1000).status_code == 201


def test_an_upload_without_a_file_is_a_bad_request(client, alice, group):
    client.force_login(alice)

    response = client.post(f"/api/conversations/{group.pk}/uploads/", {"other": "x"})

    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


def test_uploads_need_the_csrf_token_with_a_session(alice, group):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = upload(client, group, "a.png", PNG)

    assert response.status_code == 403
    assert not Upload.objects.exists()


def test_an_uploaded_file_name_is_reduced_to_its_last_part(client, alice, group):
    client.force_login(alice)

    body = upload(client, group, "../../etc/passwd", b"data").json()

    assert body["name"] == "passwd"

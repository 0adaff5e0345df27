"""VAPID keys: where they come from, the vapid_keys command, and the REST endpoint."""

from __future__ import annotations

import stat
from io import StringIO
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from notifications import vapid
from notifications.providers import get_provider
from tests.conftest import token_of

URL = "/api/push/vapid-public-key/"


def _run(*args: str) -> str:
    out = StringIO()
    call_command("vapid_keys", *args, stdout=out)
    return out.getvalue()


def _decodes_to_a_p256_point(public_key: str) -> bool:
    raw = vapid.b64url_decode(public_key)
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    return len(raw) == 65 and raw[0] == 4 and "=" not in public_key


def test_generate_prints_a_private_key_the_setting_accepts_and_its_public_key(settings):
    lines = dict(line.split("=", 1) for line in _run("generate").split())
    settings.IMS_VAPID_PRIVATE_KEY = lines["IMS_VAPID_PRIVATE_KEY"]
    assert vapid.application_server_key() == lines["IMS_VAPID_PUBLIC_KEY"]
    assert _decodes_to_a_p256_point(lines["IMS_VAPID_PUBLIC_KEY"])


def test_generate_write_stores_a_private_pem_in_the_var_dir(settings):
    output = _run("generate", "--write")
    path = Path(settings.VAR_DIR) / "vapid_private.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    public_key = vapid.application_server_key()
    assert public_key in output
    assert "PRIVATE" not in output
    assert get_provider("webpush").is_configured()


def test_generate_never_replaces_an_existing_key_file(settings):
    _run("generate", "--write")
    before = vapid.application_server_key()
    with pytest.raises(CommandError, match="not replaced"):
        _run("generate", "--write")
    assert "kept" in _run("generate", "--write", "--keep-existing")
    assert vapid.application_server_key() == before


def test_generate_writes_to_a_given_path(tmp_path: Path, settings):
    path = tmp_path / "keys" / "vapid.pem"
    _run("generate", "--write", str(path))
    settings.IMS_VAPID_PRIVATE_KEY = str(path)
    assert _decodes_to_a_p256_point(vapid.application_server_key())
    assert get_provider("webpush").is_configured()


def test_keep_existing_skips_the_file_when_the_key_is_set_in_the_environment(settings):
    settings.IMS_VAPID_PRIVATE_KEY = vapid.private_key_b64url(vapid.generate_private_key())
    assert "no key file needed" in _run("generate", "--write", "--keep-existing")
    assert not (Path(settings.VAR_DIR) / "vapid_private.pem").exists()


def test_public_prints_the_key_browsers_subscribe_with(settings):
    key = vapid.generate_private_key()
    settings.IMS_VAPID_PRIVATE_KEY = vapid.private_key_b64url(key)
    assert _run("public").strip() == vapid.public_key_b64url(key)


def test_public_without_a_key_says_how_to_get_one():
    with pytest.raises(CommandError, match="IMS_VAPID_PRIVATE_KEY"):
        _run("public")


def test_an_explicit_public_key_is_served_as_is(settings):
    settings.IMS_VAPID_PUBLIC_KEY = "BExplicitPublicKey"
    assert vapid.application_server_key() == "BExplicitPublicKey"


def test_a_malformed_private_key_is_reported_without_echoing_it(settings):
    settings.IMS_VAPID_PRIVATE_KEY = "c2hvcnQ"
    provider = get_provider("webpush")
    assert not provider.is_configured()
    assert "c2hvcnQ" not in provider.describe_configuration()
    assert "IMS_VAPID_PRIVATE_KEY" in provider.describe_configuration()


def test_the_rest_endpoint_serves_the_public_key(alice, settings):
    key = vapid.generate_private_key()
    settings.IMS_VAPID_PRIVATE_KEY = vapid.private_key_b64url(key)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_of(alice)}")
    response = client.get(URL)
    assert response.status_code == 200
    assert response.json() == {"public_key": vapid.public_key_b64url(key)}


def test_the_rest_endpoint_needs_authentication(db, settings):
    settings.IMS_VAPID_PRIVATE_KEY = vapid.private_key_b64url(vapid.generate_private_key())
    assert APIClient().get(URL).status_code == 401


def test_the_rest_endpoint_says_when_web_push_is_off(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_of(alice)}")
    response = client.get(URL)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_endpoint_is_in_the_openapi_schema(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_of(alice)}")
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert "/api/push/vapid-public-key/" in schema["paths"]

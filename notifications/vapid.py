"""VAPID keys (RFC 8292): where the Web Push signing key comes from, and its public half.

The private key is `IMS_VAPID_PRIVATE_KEY` (a base64url raw 32-byte key, or a path to a
PEM file); when unset, `<IMS_VAR_DIR>/vapid_private.pem` if it exists. Browsers bind each
subscription to the public key they were given, so replacing the key orphans every Web
Push subscription: nothing here overwrites an existing key file.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings

DEFAULT_KEY_FILENAME = "vapid_private.pem"
_RAW_PRIVATE_KEY_BYTES = 32


class VapidKeyError(ValueError):
    """The configured key cannot be used; the message says why, never the key itself."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def default_key_path() -> Path:
    return Path(settings.VAR_DIR) / DEFAULT_KEY_FILENAME


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def private_key_b64url(key: ec.EllipticCurvePrivateKey) -> str:
    """The raw 32-byte scalar, the form `IMS_VAPID_PRIVATE_KEY` accepts."""
    return b64url_encode(key.private_numbers().private_value.to_bytes(_RAW_PRIVATE_KEY_BYTES, "big"))


def public_key_b64url(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> str:
    """The uncompressed P-256 point, base64url: `applicationServerKey` for PushManager.subscribe."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return b64url_encode(
        public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )


def write_private_key(*, key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    """Writes a new PEM file readable by its owner only; refuses to replace one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two `make run`s racing must not end with two different keys.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(private_key_pem(key))


def _load_pem(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise VapidKeyError(f"cannot read a PEM private key from {path}: {type(exc).__name__}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise VapidKeyError(f"{path} does not hold a P-256 (prime256v1) private key")
    return key


def _load_raw(text: str) -> ec.EllipticCurvePrivateKey:
    try:
        raw = b64url_decode(text)
    except ValueError:
        raise VapidKeyError("IMS_VAPID_PRIVATE_KEY is neither base64url nor an existing file") from None
    if len(raw) != _RAW_PRIVATE_KEY_BYTES:
        raise VapidKeyError(
            f"IMS_VAPID_PRIVATE_KEY decodes to {len(raw)} bytes, not {_RAW_PRIVATE_KEY_BYTES}, "
            "and names no existing file"
        )
    try:
        return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except ValueError:
        raise VapidKeyError("IMS_VAPID_PRIVATE_KEY is not a valid P-256 private key") from None


def key_source() -> str | None:
    """Where the private key comes from, for messages: the setting, a file, or None."""
    configured = settings.IMS_VAPID_PRIVATE_KEY
    if configured:
        return f"file {configured}" if Path(configured).is_file() else "IMS_VAPID_PRIVATE_KEY"
    path = default_key_path()
    return f"file {path}" if path.is_file() else None


def load_private_key() -> ec.EllipticCurvePrivateKey | None:
    """The configured VAPID private key, or None when there is none; VapidKeyError if unusable."""
    configured = settings.IMS_VAPID_PRIVATE_KEY
    if configured:
        path = Path(configured)
        return _load_pem(path) if path.is_file() else _load_raw(configured)
    path = default_key_path()
    return _load_pem(path) if path.is_file() else None


def application_server_key() -> str | None:
    """The public key browsers subscribe with: IMS_VAPID_PUBLIC_KEY, else derived."""
    if settings.IMS_VAPID_PUBLIC_KEY:
        return settings.IMS_VAPID_PUBLIC_KEY.strip()
    key = load_private_key()
    return public_key_b64url(key) if key is not None else None

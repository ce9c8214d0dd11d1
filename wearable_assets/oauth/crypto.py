"""Encryption of OAuth tokens at rest (Fernet: AES-128-CBC + HMAC-SHA256, from ``cryptography``).

The key lives only in the environment (``WEARABLES_TOKEN_KEY``), never in the database, so a
database dump or backup alone does not expose participants' tokens.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from wearable_assets.settings import TOKEN_KEY_ENV

#: What to do about a missing or malformed key; part of the error, wherever it surfaces (CLI, run log).
KEY_FIX = f"generate one with `wearable-assets token-key` and put it in {TOKEN_KEY_ENV}"


class TokenKeyError(ValueError):
    """The configured key is missing, malformed, or not the key the tokens were stored with."""


def generate_key() -> str:
    """A new random key to put in ``WEARABLES_TOKEN_KEY``."""
    return Fernet.generate_key().decode("ascii")


class TokenCipher:
    """Turns a token dict into ciphertext and back."""

    def __init__(self, key: str) -> None:
        if not key:
            raise TokenKeyError(f"{TOKEN_KEY_ENV} is not set: {KEY_FIX}")
        try:
            self._fernet = Fernet(key.encode("ascii") if isinstance(key, str) else key)
        except (ValueError, TypeError):
            # Deliberately not echoing the value: it is a secret even when malformed.
            raise TokenKeyError(
                f"{TOKEN_KEY_ENV} is not a valid Fernet key (it must be 32 url-safe base64-encoded bytes): {KEY_FIX}"
            ) from None

    def encrypt(self, token: dict[str, Any]) -> bytes:
        return self._fernet.encrypt(json.dumps(token, separators=(",", ":")).encode("utf-8"))

    def decrypt(self, ciphertext: bytes) -> dict[str, Any]:
        try:
            plain = self._fernet.decrypt(bytes(ciphertext))
        except InvalidToken:
            raise TokenKeyError(
                f"stored OAuth tokens cannot be decrypted with the current {TOKEN_KEY_ENV}: "
                "the key changed since enrolment (restore the old key, or re-enrol the participant)"
            ) from None
        return json.loads(plain)

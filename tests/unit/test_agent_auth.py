"""Token verification (HS256 and JWKS) and keyset cursors, without the stack."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from service.api.agent import decode_cursor, encode_cursor
from service.api.auth import InvalidToken, TokenVerifier, bearer_token
from service.api.errors import ApiError
from service.tokens import mint_access_token

SECRET = "unit-test-secret-with-at-least-32-characters"
JWKS_URL = "https://project.supabase.co/auth/v1/.well-known/jwks.json"
USER = uuid.UUID("a0000000-0000-4000-8000-0000000000a1")


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": str(USER),
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + 600,
    }
    return {**base, **extra}


class Jwks:
    """A JWKS endpoint on an httpx MockTransport, counting fetches."""

    def __init__(self) -> None:
        self.keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self.fetches = 0
        self.fail = False

    def add(self, kid: str) -> ec.EllipticCurvePrivateKey:
        key = ec.generate_private_key(ec.SECP256R1())
        self.keys[kid] = key
        return key

    def sign(self, kid: str, payload: dict[str, Any]) -> str:
        return jwt.encode(payload, self.keys[kid], algorithm="ES256", headers={"kid": kid})

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        if self.fail:
            return httpx.Response(503)
        keys = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "alg": "ES256", "use": "sig"})
        return httpx.Response(200, json={"keys": keys})


@pytest.fixture
def jwks() -> Jwks:
    return Jwks()


def verifier_for(jwks: Jwks, clock: list[float] | None = None, **kwargs: Any) -> TokenVerifier:
    http = httpx.AsyncClient(transport=httpx.MockTransport(jwks.handler))
    now = clock if clock is not None else [0.0]
    return TokenVerifier(
        jwt_secret=SECRET, jwks_url=JWKS_URL, http=http, clock=lambda: now[0], **kwargs
    )


async def test_hs256_token_is_verified() -> None:
    verifier = TokenVerifier(jwt_secret=SECRET)
    user = await verifier.verify(mint_access_token(SECRET, USER, email="a@example.com"))
    assert user.user_id == USER
    assert user.email == "a@example.com"
    assert "eyJ" not in repr(user)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (mint_access_token(SECRET, USER, now=time.time() - 7200, ttl_seconds=60), "expired"),
        (mint_access_token("another-secret-of-at-least-32-characters!", USER), "invalid"),
        (jwt.encode(claims(aud="other"), SECRET, algorithm="HS256"), "invalid"),
        (jwt.encode(claims(role="service_role"), SECRET, algorithm="HS256"), "signed-in"),
        (jwt.encode(claims(sub="not-a-uuid"), SECRET, algorithm="HS256"), "subject"),
        (jwt.encode({"sub": str(USER), "aud": "authenticated"}, SECRET), "invalid"),
        (jwt.encode(claims(), "", algorithm="none"), "algorithm"),
        ("garbage", "malformed"),
    ],
)
async def test_bad_hs256_tokens_are_refused(token: str, reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason):
        await TokenVerifier(jwt_secret=SECRET).verify(token)


async def test_asymmetric_token_is_verified_with_cached_jwks(jwks: Jwks) -> None:
    jwks.add("k1")
    verifier = verifier_for(jwks)
    for _ in range(3):
        user = await verifier.verify(jwks.sign("k1", claims()))
        assert user.user_id == USER
    assert jwks.fetches == 1


async def test_rotated_key_is_fetched_once_per_cooldown(jwks: Jwks) -> None:
    jwks.add("k1")
    clock = [0.0]
    verifier = verifier_for(jwks, clock, refetch_cooldown_seconds=30)
    await verifier.verify(jwks.sign("k1", claims()))
    jwks.add("k2")
    token = jwks.sign("k2", claims())
    # Within the cooldown an unknown kid does not trigger another fetch.
    with pytest.raises(InvalidToken, match="unknown signing key"):
        await verifier.verify(token)
    assert jwks.fetches == 1
    clock[0] = 31.0
    assert (await verifier.verify(token)).user_id == USER
    assert jwks.fetches == 2


async def test_forged_asymmetric_token_is_refused(jwks: Jwks) -> None:
    jwks.add("k1")
    other = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(claims(), other, algorithm="ES256", headers={"kid": "k1"})
    with pytest.raises(InvalidToken, match="invalid"):
        await verifier_for(jwks).verify(forged)


async def test_unreachable_jwks_is_503_not_401(jwks: Jwks) -> None:
    jwks.add("k1")
    jwks.fail = True
    with pytest.raises(ApiError) as raised:
        await verifier_for(jwks).verify(jwks.sign("k1", claims()))
    assert raised.value.status_code == 503


async def test_asymmetric_token_without_jwks_configured_is_refused(jwks: Jwks) -> None:
    jwks.add("k1")
    with pytest.raises(InvalidToken, match="algorithm"):
        await TokenVerifier(jwt_secret=SECRET).verify(jwks.sign("k1", claims()))


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic abc", "Token abc"])
def test_bearer_header_is_required(header: str | None) -> None:
    with pytest.raises(InvalidToken):
        bearer_token(header)


def test_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token("bearer abc") == "abc"


def test_cursor_round_trip_and_rejects_junk() -> None:
    at = datetime(2026, 1, 30, 12, 0, 0, 123456, tzinfo=UTC)
    row = uuid.uuid4()
    cursor = encode_cursor(at, row)
    assert "=" not in cursor
    assert decode_cursor(cursor, "cursor") == (at, row)
    assert decode_cursor(None, "cursor") is None
    for junk in ("x", "eyJ9", encode_cursor(at, row)[:-3] + "!!!"):
        with pytest.raises(ApiError) as raised:
            decode_cursor(junk, "cursor")
        assert raised.value.status_code == 422

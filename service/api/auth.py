"""Agents' bearer tokens: verified here before any database call.

Supabase Auth signs access tokens with the project's legacy HS256 secret or,
with asymmetric signing keys, with a key published at the project's JWKS URL.
Both are accepted when configured. PostgREST checks the token again; verifying
it here means a bad token is a clean 401 and never reaches the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import msgspec

from service.api.errors import ApiError

log = logging.getLogger(__name__)

AUDIENCE = "authenticated"
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "ES256", "EdDSA"})


class AuthUser(msgspec.Struct, frozen=True):
    """The verified caller: database calls use `token`, so RLS sees this user."""

    user_id: uuid.UUID
    token: str
    email: str | None = None

    def __repr__(self) -> str:
        return f"AuthUser(user_id={self.user_id})"


class InvalidToken(Exception):
    """Missing, malformed, forged, expired or not an agent's token."""


class TokenVerifier:
    """Verifies Supabase access tokens; caches the JWKS (refetched on an unknown key id)."""

    def __init__(
        self,
        *,
        jwt_secret: str = "",
        jwks_url: str = "",
        http: httpx.AsyncClient | None = None,
        jwks_ttl_seconds: float = 600.0,
        refetch_cooldown_seconds: float = 30.0,
        leeway_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not jwt_secret and not jwks_url:
            log.warning(
                "neither SUPABASE_JWT_SECRET nor SUPABASE_JWKS_URL is set: every token is refused"
            )
        if jwks_url and http is None:
            raise ValueError("jwks_url needs an httpx client")
        self._secret = jwt_secret
        self._jwks_url = jwks_url
        self._http = http
        self._ttl = jwks_ttl_seconds
        self._cooldown = refetch_cooldown_seconds
        self._leeway = leeway_seconds
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def verify(self, token: str) -> AuthUser:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        algorithm = header.get("alg")
        key: Any
        if algorithm == "HS256" and self._secret:
            key = self._secret
        elif algorithm in ASYMMETRIC_ALGORITHMS and self._jwks_url:
            key = await self._signing_key(header.get("kid"))
        else:
            raise InvalidToken("unsupported signing algorithm")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=AUDIENCE,
                leeway=self._leeway,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("invalid token") from exc
        if claims.get("role") != "authenticated":
            raise InvalidToken("not a signed-in user's token")
        try:
            user_id = uuid.UUID(str(claims["sub"]))
        except ValueError as exc:
            raise InvalidToken("invalid subject") from exc
        email = claims.get("email")
        return AuthUser(
            user_id=user_id, token=token, email=email if isinstance(email, str) else None
        )

    async def _signing_key(self, kid: object) -> Any:
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("token names no signing key")
        now = self._clock()
        fresh = self._fetched_at is not None and now - self._fetched_at < self._ttl
        if fresh and kid in self._keys:
            return self._keys[kid].key
        async with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self._ttl
            # An unknown kid may be a rotated key: refetch, but not more than once per cooldown,
            # so random kids cannot turn into a flood of JWKS requests.
            cooled = self._fetched_at is None or now - self._fetched_at >= self._cooldown
            if stale or (kid not in self._keys and cooled):
                await self._fetch()
        found = self._keys.get(kid)
        if found is None:
            raise InvalidToken("unknown signing key")
        return found.key

    async def _fetch(self) -> None:
        assert self._http is not None
        try:
            response = await self._http.get(self._jwks_url, timeout=5.0)
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_json(response.text)
        except (httpx.HTTPError, jwt.PyJWTError) as exc:
            log.warning("JWKS fetch failed: %s", type(exc).__name__)
            if not self._keys:
                raise ApiError(503, "unavailable", "cannot verify tokens right now") from exc
            # Keep the last good keys; try again after the cooldown.
            self._fetched_at = self._clock() - self._ttl + self._cooldown
            return
        self._keys = {k.key_id: k for k in keys.keys if k.key_id}
        self._fetched_at = self._clock()


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise InvalidToken("missing bearer token")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("missing bearer token")
    return token


async def authenticate(verifier: TokenVerifier, authorization: str | None) -> AuthUser:
    """The verified caller, or a 401 in the one error shape."""
    try:
        return await verifier.verify(bearer_token(authorization))
    except InvalidToken as exc:
        raise ApiError(401, "unauthorized", str(exc)) from exc

"""Signing Supabase-shaped access tokens for the local stack (dev-token, tests)."""

from __future__ import annotations

import time
import uuid

import jwt


def mint_access_token(
    secret: str,
    user_id: uuid.UUID | str,
    *,
    email: str | None = None,
    ttl_seconds: int = 3600,
    now: float | None = None,
    role: str = "authenticated",
) -> str:
    """An HS256 token with the claims Supabase Auth puts in a user's access token."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "sub": str(user_id),
        "role": role,
        "aud": "authenticated",
        "iat": issued,
        "exp": issued + ttl_seconds,
        "email": email or "",
        "app_metadata": {"provider": "email"},
        "user_metadata": {},
        "aal": "aal1",
        "is_anonymous": False,
    }
    return jwt.encode(claims, secret, algorithm="HS256")

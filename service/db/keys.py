"""API keys: create (the token is printed once), list, revoke, and verify by hash."""

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from service.core.errors import HeeldropError
from service.db import ApiKey, Unavailable, now
from service.db.tables import NAME

PREFIX = "hd_"


class KeyProblem(HeeldropError):
    """A key operation that cannot be done (duplicate or unknown name)."""


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's id hash (safe to log), its tenant and its scope."""

    key_id: str
    name: str
    admin: bool
    tenant: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(engine: Engine, name: str, admin: bool = False, tenant: str | None = None) -> str:
    """Store a new key's hash and return the token, which is never stored. The key acts for
    `tenant` (by default a tenant of its own name)."""
    tenant = name if tenant is None else tenant
    for what, value in (("name", name), ("tenant", tenant)):
        if not 0 < len(value) <= NAME:  # the column's size: PostgreSQL would refuse it
            raise KeyProblem(f"a key's {what} is 1 to {NAME} characters")
    token = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, tenant=tenant, key_hash=digest(token), admin=admin, created_at=now())
    try:
        with Session(engine) as session, session.begin():
            session.add(key)
    except IntegrityError:
        raise KeyProblem(f"a key named {name!r} exists") from None
    return token


def listing(engine: Engine) -> list[ApiKey]:
    with Session(engine) as session:
        return list(session.scalars(select(ApiKey).order_by(ApiKey.name)))


def revoke(engine: Engine, name: str) -> None:
    with Session(engine) as session, session.begin():
        key = session.scalar(select(ApiKey).where(ApiKey.name == name))
        if key is None or key.revoked_at is not None:
            raise KeyProblem(f"no active key named {name!r}")
        key.revoked_at = now()


class KeyStore:
    """Verifies bearer tokens against the database, caching active keys for a few seconds."""

    def __init__(self, engine: Engine, cache_seconds: float):
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[str, Caller]] = {}
        self._loaded = -float("inf")

    def _refresh(self) -> None:
        """Reload the active keys; Unavailable when the database fails (and the keys are then
        checked again on the next call, not served stale beyond the cache's life)."""
        try:
            with Session(self.engine) as session:
                rows = list(session.scalars(select(ApiKey).where(ApiKey.revoked_at.is_(None))))
        except SQLAlchemyError as exc:
            raise Unavailable(type(exc).__name__) from None
        self._cache = {
            k.key_hash[:16]: (
                k.key_hash,
                Caller(digest(k.key_hash)[:12], k.name, k.admin, k.tenant),
            )
            for k in rows
        }
        self._loaded = time.monotonic()

    def verify(self, token: str) -> Caller | None:
        """The caller for a token, or None; compared in constant time."""
        if not token.startswith(PREFIX) or len(token) > 128:
            return None
        if time.monotonic() - self._loaded > self.cache_seconds:
            self._refresh()
        wanted = digest(token)
        stored, caller = self._cache.get(wanted[:16], ("", None))
        if caller is None or not hmac.compare_digest(stored, wanted):
            return None
        return caller

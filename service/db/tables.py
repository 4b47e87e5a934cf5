"""The database's tables: API keys and staff users (each of a tenant), the recommendation log,
outcomes."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAME = 64  # the size of key, tenant and user names
ID = 80  # a request id: 32 hex digits, and a batch item's "-index"


class Moment(TypeDecorator[datetime]):
    """A time in UTC, read back with its time zone on every database (SQLite keeps none)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: Moment}  # noqa: RUF012 - SQLAlchemy's convention


class ApiKey(Base):
    """A caller's key: only its SHA-256 is stored; the token is shown once at creation. Keys of
    one tenant share its recommendation log and outcomes."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME), unique=True)
    tenant: Mapped[str] = mapped_column(String(NAME), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class StaffUser(Base):
    """A fitter who signs in to the fitter's page, acting for a tenant as its keys do. Only a
    salted hash of the password is stored (Werkzeug's scrypt)."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME), unique=True)
    tenant: Mapped[str] = mapped_column(String(NAME))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column()
    disabled_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Recommendation(Base):
    """One answered recommendation: the validated request (free-text fields left out), the
    versions that answered it, and the answer's range, band, direction and referral."""

    __tablename__ = "recommendations"

    request_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(NAME))  # read with its request id, the key
    created_at: Mapped[datetime] = mapped_column(index=True)
    rules_version: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    trained_on: Mapped[str | None] = mapped_column(String(16), nullable=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    drop_min_mm: Mapped[int] = mapped_column(Integer)
    drop_max_mm: Mapped[int] = mapped_column(Integer)
    band: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float] = mapped_column(Float)
    referral: Mapped[str | None] = mapped_column(String(16), nullable=True)  # its urgency


class Outcome(Base):
    """What happened after a recommendation, reported by the tenant that got it."""

    __tablename__ = "outcomes"
    __table_args__ = (UniqueConstraint("request_id", "weeks_worn"),)

    outcome_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_id: Mapped[str] = mapped_column(
        String(ID), ForeignKey("recommendations.request_id", ondelete="CASCADE"), index=True
    )
    tenant: Mapped[str] = mapped_column(String(NAME))
    received_at: Mapped[datetime] = mapped_column()
    weeks_worn: Mapped[int] = mapped_column(Integer)
    drop_mm_worn: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(8))
    symptoms_after: Mapped[dict[str, Any]] = mapped_column(JSON)

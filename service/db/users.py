"""Staff users of the fitter's page: create (the password hashed with Werkzeug's scrypt), list,
disable, and check a sign-in."""

from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from service.core.errors import HeeldropError
from service.db import StaffUser, now
from service.db.tables import NAME

MIN_PASSWORD = 12
MAX_PASSWORD = 200
# Checked when the name is unknown, so an unknown name costs what a wrong password does.
_DECOY = generate_password_hash("not a password of anyone's")


class UserProblem(HeeldropError):
    """A user operation that cannot be done (duplicate or unknown name, weak password)."""


@dataclass(frozen=True)
class Staff:
    """Who is signed in: a staff user's id, name and tenant."""

    id: int
    name: str
    tenant: str


def create(engine: Engine, name: str, tenant: str, password: str) -> None:
    for what, value in (("name", name), ("tenant", tenant)):
        if not 0 < len(value) <= NAME:
            raise UserProblem(f"a user's {what} is 1 to {NAME} characters")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserProblem(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    user = StaffUser(name=name, tenant=tenant, password_hash=generate_password_hash(password),
                     created_at=now())  # fmt: skip
    try:
        with Session(engine) as session, session.begin():
            session.add(user)
    except IntegrityError:
        raise UserProblem(f"a user named {name!r} exists") from None


def listing(engine: Engine) -> list[StaffUser]:
    with Session(engine) as session:
        return list(session.scalars(select(StaffUser).order_by(StaffUser.name)))


def disable(engine: Engine, name: str) -> None:
    with Session(engine) as session, session.begin():
        user = session.scalar(select(StaffUser).where(StaffUser.name == name))
        if user is None or user.disabled_at is not None:
            raise UserProblem(f"no active user named {name!r}")
        user.disabled_at = now()


def sign_in(engine: Engine, name: str, password: str) -> Staff | None:
    """The active user with this name and password, or None (in about the same time either
    way)."""
    with Session(engine) as session:
        user = session.scalar(select(StaffUser).where(StaffUser.name == name[:NAME]))
    ok = check_password_hash(user.password_hash if user else _DECOY, password[:MAX_PASSWORD])
    if user is None or not ok or user.disabled_at is not None:
        return None
    return Staff(user.id, user.name, user.tenant)


def active(engine: Engine, user_id: int) -> Staff | None:
    """The user of a session, while still active."""
    with Session(engine) as session:
        user = session.get(StaffUser, user_id)
    if user is None or user.disabled_at is not None:
        return None
    return Staff(user.id, user.name, user.tenant)

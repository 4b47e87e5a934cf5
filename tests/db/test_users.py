"""Staff users on SQLite and PostgreSQL, and `heeldrop users create|list|disable`."""

import pytest
import sqlalchemy as sa

from service.db import StaffUser, engine_for, users

PASSWORD = "correct horse battery"


def test_a_user_signs_in_with_its_password_only_and_acts_for_its_tenant(engine):
    users.create(engine, "ann", "corner-shop", PASSWORD)
    staff = users.sign_in(engine, "ann", PASSWORD)
    assert (staff.name, staff.tenant) == ("ann", "corner-shop")
    assert users.active(engine, staff.id) == staff
    for name, password in (("ann", PASSWORD + "x"), ("ann", ""), ("nobody", PASSWORD)):
        assert users.sign_in(engine, name, password) is None


def test_only_a_salted_scrypt_hash_is_stored(engine):
    users.create(engine, "ann", "shop", PASSWORD)
    users.create(engine, "bob", "shop", PASSWORD)
    with engine.connect() as connection:
        hashes = list(connection.execute(sa.select(StaffUser.password_hash)).scalars())
    assert all(h.startswith("scrypt:") and PASSWORD not in h for h in hashes)
    assert hashes[0] != hashes[1]


def test_a_disabled_user_can_no_longer_sign_in_or_keep_its_session(engine):
    users.create(engine, "ann", "shop", PASSWORD)
    staff = users.sign_in(engine, "ann", PASSWORD)
    users.disable(engine, "ann")
    assert users.sign_in(engine, "ann", PASSWORD) is None
    assert users.active(engine, staff.id) is None
    with pytest.raises(users.UserProblem):
        users.disable(engine, "ann")


@pytest.mark.parametrize(
    ("name", "tenant", "password", "problem"),
    [("ann", "shop", "short", "12"), ("", "shop", PASSWORD, "name"), ("ann", "t" * 65, PASSWORD,
     "tenant")],
)  # fmt: skip
def test_bad_users_are_refused(engine, name, tenant, password, problem):
    with pytest.raises(users.UserProblem, match=problem):
        users.create(engine, name, tenant, password)


def test_names_are_unique(engine):
    users.create(engine, "ann", "shop", PASSWORD)
    with pytest.raises(users.UserProblem, match="exists"):
        users.create(engine, "ann", "other", PASSWORD)


def test_the_cli_creates_lists_and_disables_users_reading_the_password_from_stdin(heeldrop, db_url):
    code, _, err = heeldrop("users", "create", "--name", "ann", "--tenant", "corner-shop",
                            stdin=PASSWORD + "\n")  # fmt: skip
    assert code == 0 and "corner-shop" in err and PASSWORD not in err
    assert users.sign_in(engine_for(db_url), "ann", PASSWORD) is not None
    code, out, _ = heeldrop("users", "list")
    assert out.startswith("ann\ttenant corner-shop\tactive") and PASSWORD not in out
    assert heeldrop("users", "disable", "ann")[0] == 0
    assert "disabled" in heeldrop("users", "list")[1]


def test_the_cli_refuses_a_short_password_or_missing_options(heeldrop):
    code, _, err = heeldrop("users", "create", "--name", "ann", "--tenant", "t", stdin="short\n")
    assert code == 2 and "12" in err
    assert heeldrop("users", "create", "--name", "ann")[0] == 2
    assert heeldrop("users", "disable")[0] == 2
    assert heeldrop("users", "disable", "nobody")[0] == 2

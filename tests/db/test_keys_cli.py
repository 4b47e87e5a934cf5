"""`heeldrop keys create|list|revoke`: the token printed once, never listed, names unique."""

import os
import re
import subprocess
import sys
from pathlib import Path

from service.db import engine_for, keys

TOKEN = re.compile(r"hd_[A-Za-z0-9_-]{40,}")


def test_create_prints_a_url_safe_token_once(heeldrop, db_url):
    code, out, err = heeldrop("keys", "create", "--name", "shop-1")
    assert code == 0
    token = out.strip()
    assert TOKEN.fullmatch(token)
    assert (out + err).count(token) == 1
    assert "shop-1" in err
    caller = keys.KeyStore(engine_for(db_url), 0).verify(token)
    assert caller is not None and caller.admin is False


def test_create_with_admin_makes_an_admin_key(heeldrop, db_url):
    code, out, _ = heeldrop("keys", "create", "--name", "ops", "--admin")
    assert code == 0
    assert keys.KeyStore(engine_for(db_url), 0).verify(out.strip()).admin is True


def test_each_created_token_is_new(heeldrop):
    tokens = {heeldrop("keys", "create", "--name", f"k{i}")[1].strip() for i in range(3)}
    assert len(tokens) == 3


def test_list_shows_names_scopes_and_states_but_never_a_token(heeldrop):
    shop = heeldrop("keys", "create", "--name", "shop-1")[1].strip()
    ops = heeldrop("keys", "create", "--name", "ops", "--admin")[1].strip()
    heeldrop("keys", "revoke", "shop-1")
    code, out, err = heeldrop("keys", "list")
    assert code == 0
    rows = {line.split("\t")[0]: line for line in out.splitlines()}
    assert set(rows) == {"ops", "shop-1"}
    assert "admin" in rows["ops"] and "active" in rows["ops"]
    assert "shop" in rows["shop-1"] and "revoked" in rows["shop-1"]
    for token in (shop, ops):
        assert token not in out + err and token.removeprefix("hd_")[:12] not in out + err


def test_a_revoked_key_no_longer_verifies(heeldrop, db_url):
    token = heeldrop("keys", "create", "--name", "shop-1")[1].strip()
    code, _, err = heeldrop("keys", "revoke", "shop-1")
    assert code == 0 and "shop-1" in err
    assert keys.KeyStore(engine_for(db_url), 0).verify(token) is None


def test_revoking_an_unknown_name_exits_2_with_a_message(heeldrop):
    code, out, err = heeldrop("keys", "revoke", "nobody")
    assert code == 2
    assert "nobody" in err and out == ""


def test_a_duplicate_name_exits_2_and_prints_no_token(heeldrop):
    heeldrop("keys", "create", "--name", "shop-1")
    code, out, err = heeldrop("keys", "create", "--name", "shop-1", "--admin")
    assert code == 2
    assert "shop-1" in err and not TOKEN.search(out + err)


def test_create_without_a_name_exits_2(heeldrop):
    code, out, err = heeldrop("keys", "create")
    assert code == 2 and "--name" in err and not TOKEN.search(out)


def test_a_name_over_64_characters_exits_2(heeldrop):
    code, out, err = heeldrop("keys", "create", "--name", "n" * 65)
    assert code == 2 and "64" in err and not TOKEN.search(out)


def test_the_console_command_exits_2_on_an_unknown_name(db_url):
    """One real process (it is slow to start): main()'s code must become the exit status."""
    heeldrop = Path(sys.executable).with_name("heeldrop")
    env = {**os.environ, "HEELDROP_DATABASE_URL": db_url}
    done = subprocess.run([heeldrop, "keys", "revoke", "ghost"], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert "ghost" in done.stderr and "Traceback" not in done.stderr


def test_a_key_acts_for_its_tenant_named_or_by_default_its_own_name(heeldrop, db_url):
    till = heeldrop("keys", "create", "--name", "till-1", "--tenant", "corner-shop")[1].strip()
    solo = heeldrop("keys", "create", "--name", "app-x")[1].strip()
    store = keys.KeyStore(engine_for(db_url), 0)
    assert store.verify(till).tenant == "corner-shop"
    assert store.verify(solo).tenant == "app-x"
    rows = {line.split("\t")[0]: line for line in heeldrop("keys", "list")[1].splitlines()}
    assert "tenant corner-shop" in rows["till-1"] and "tenant app-x" in rows["app-x"]


def test_a_tenant_name_that_does_not_fit_is_refused(heeldrop):
    code, _, err = heeldrop("keys", "create", "--name", "till", "--tenant", "t" * 65)
    assert code == 2 and "tenant" in err and "64" in err

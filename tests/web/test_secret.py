"""The session-signing key: from HEELDROP_SECRET_KEY, else made once in a file every worker
reads."""

import os
import stat
from concurrent.futures import ThreadPoolExecutor

from service.web import secret_key


def test_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("HEELDROP_SECRET_KEY", "from-env")
    assert secret_key(tmp_path / "key") == "from-env"
    assert not (tmp_path / "key").exists()


def test_a_key_file_is_made_once_private_and_shared(tmp_path, monkeypatch):
    monkeypatch.delenv("HEELDROP_SECRET_KEY", raising=False)
    path = tmp_path / "instance" / "secret_key"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: secret_key(path), range(16)))
    assert len(keys) == 1 and len(keys.pop()) >= 40
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]

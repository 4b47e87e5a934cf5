"""The database tests' command runner."""

import io

import pytest

from service import cli


@pytest.fixture
def heeldrop(db_url, monkeypatch, capsys):
    """Run `heeldrop ARGS...` in-process against a fresh database, `stdin` as its standard
    input: (exit code, stdout, stderr)."""
    monkeypatch.setenv("HEELDROP_DATABASE_URL", db_url)

    def run(*args, stdin=""):
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run

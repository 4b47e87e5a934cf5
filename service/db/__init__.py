"""The SQL database: API keys and their tenants, the recommendation log and outcomes, migrated
with Alembic. SQLite by default (one file, write-ahead log); PostgreSQL through the same URL."""

import contextlib
import os
import signal
import threading
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import psycopg
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DisconnectionError, OperationalError, SQLAlchemyError

from service.core.errors import HeeldropError
from service.db.tables import ApiKey, Base, Outcome, Recommendation, StaffUser

__all__ = [
    "ApiKey", "Base", "Outcome", "Recommendation", "StaffUser", "Unavailable", "alembic_config",
    "engine_for", "now", "ping", "upgrade",
]  # fmt: skip
BUSY_SECONDS = 5  # how long a SQLite writer waits for another's lock before failing
CONNECT_SECONDS = 5  # how long a PostgreSQL connection may take to open
STATEMENT_MS = 5000  # how long a PostgreSQL statement may run
# How long one use of a PostgreSQL connection may wait for the server at all: past the server's
# own statement timeout, a server that has not answered is not running (a frozen host), which
# no socket option detects on a live TCP connection.
HUNG_SECONDS = STATEMENT_MS / 1000 + 1


class Unavailable(HeeldropError):
    """The database failed; the message names the error's type only (never its parameters,
    which may hold the health data being written)."""


def now() -> datetime:
    return datetime.now(UTC)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def engine_for(url: str) -> Engine:
    """An engine for `url`; a SQLite file's folder is created first.

    SQLite runs in write-ahead-log mode: readers never block the writer, and a writer waits up
    to BUSY_SECONDS for another. Its `synchronous=NORMAL` keeps every committed row through a
    killed process (the log's promise); only a power cut can lose the last commits, where
    PostgreSQL (which syncs every commit) is the database to use.
    """
    if url.startswith("sqlite:"):
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            _private_file(Path(url.removeprefix("sqlite:///")))
        engine = create_engine(url, json_serializer=_json, connect_args={"timeout": BUSY_SECONDS})
        event.listen(engine, "connect", _sqlite_settings)
        return engine
    engine = create_engine(
        url, json_serializer=_json,
        connect_args={
            "connect_timeout": CONNECT_SECONDS,
            # a statement or lock wait past these fails (503) instead of holding a worker
            "options": f"-c statement_timeout={STATEMENT_MS} -c lock_timeout={STATEMENT_MS}",
        },
    )  # fmt: skip
    event.listen(engine, "checkout", _checkout)
    for name in ("before_cursor_execute", "commit", "rollback"):  # each wait for the server
        event.listen(engine, name, _arm)
    for name in ("after_cursor_execute", "checkin"):
        event.listen(engine, name, _disarm)
    event.listen(engine, "handle_error", _hung_is_a_disconnect)
    return engine


class Hung(psycopg.OperationalError):
    """The PostgreSQL server did not answer within HUNG_SECONDS."""


def _alarm(signum: int, frame: Any) -> None:
    raise Hung(f"the database did not answer within {HUNG_SECONDS:g} s")


def _arm(*_: Any) -> None:
    """A deadline for one wait on the server: a statement, a commit, a rollback, a ping. Only
    on the main thread, where signals arrive (a gunicorn sync worker's requests, the CLI's
    commands); SIGALRM then interrupts the wait with Hung."""
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGALRM) is not _alarm:
            signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, HUNG_SECONDS)


def _disarm(*_: Any) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.setitimer(signal.ITIMER_REAL, 0)


def _checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """A ping as a pooled connection is taken, so one the server closed is replaced rather
    than failing a request (SQLAlchemy's pre-ping, with the deadline around it)."""
    _arm()
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Hung as exc:  # the pool closes this connection; the caller gets a database error
        raise OperationalError("SELECT 1", None, exc) from None
    except psycopg.Error:
        raise DisconnectionError() from None  # the pool connects anew
    finally:
        _disarm()


def _hung_is_a_disconnect(context: ExceptionContext) -> None:
    """A connection whose server stopped answering is closed, never rolled back on: the
    rollback would wait for the server too."""
    if isinstance(context.original_exception, Hung):
        context.is_disconnect = True


def ping(engine: Engine) -> None:
    """Unavailable unless the database answers a trivial query."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise Unavailable(type(exc).__name__) from None


def _private_file(path: Path) -> None:
    """Create a new SQLite file readable by its owner only: it holds health data, and SQLite
    gives its -wal and -shm files the database file's permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # an existing database keeps its mode
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _sqlite_settings(connection: Any, _: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def alembic_config(url: str) -> AlembicConfig:
    """Alembic's configuration for the database at `url`."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("service.db") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Bring the database at `url` to the newest schema."""
    engine_for(url).dispose()  # creates a SQLite file's folder
    command.upgrade(alembic_config(url), "head")

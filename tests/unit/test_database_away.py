"""Which failures mean "the database is away" (wait and retry) rather than "this work is wrong"."""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError, IntegrityError

from services.common.db import database_away


def wrapped(driver_error: Exception) -> Exception:
    """How SQLAlchemy hands a driver's error on: raised from it."""
    try:
        raise DBAPIError("SELECT 1", None, driver_error) from driver_error
    except DBAPIError as error:
        return error


def test_connection_failures_mean_the_database_is_away() -> None:
    assert database_away(FileNotFoundError(2, "No such file or directory"))  # the socket file gone
    assert database_away(wrapped(ConnectionRefusedError(111, "Connection refused")))
    assert database_away(wrapped(asyncpg.CannotConnectNowError("the database system is starting up")))
    assert database_away(wrapped(asyncpg.AdminShutdownError("terminating connection")))


def test_errors_about_the_work_itself_do_not() -> None:
    assert not database_away(ValueError("bad value"))
    assert not database_away(IntegrityError("INSERT", None, Exception("duplicate key")))
    try:  # an error raised while handling a connection error is the handler's own
        try:
            raise ConnectionRefusedError()
        except ConnectionRefusedError:
            raise ValueError("handler bug") from None
    except ValueError as error:
        assert not database_away(error)

"""Database connection tuning that Django's settings cannot express."""

from __future__ import annotations

import sqlite3
from typing import Any


def use_sqlite_variable_limit(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created receiver: let SQLite bulk statements use the build's real limit.

    Django 5.2 assumes SQLite's pre-3.32 limit of 999 variables a statement, so a send to
    200 users became three INSERTs of 83 rows and a broadcast to 10,000 about 120; builds
    since 3.32 allow 32,766 (Debian's 250,000). Django 6.0 reads the real limit (#36143).
    """
    if connection.vendor != "sqlite" or "max_query_params" in vars(connection.features):
        return
    connection.features.max_query_params = connection.connection.getlimit(
        sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER
    )

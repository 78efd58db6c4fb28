"""The benchmarks' own PostgreSQL databases on the local server (user postgres, trust auth)."""

SERVER_URL = "postgres://postgres@127.0.0.1:5432"


def _run(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as connection:
        connection.execute(sql)


def database_recreate(name: str) -> None:
    """An empty database `name`, dropping what an earlier, interrupted run left."""
    database_drop(name)
    _run(f"CREATE DATABASE {name}")


def database_drop(name: str) -> None:
    _run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

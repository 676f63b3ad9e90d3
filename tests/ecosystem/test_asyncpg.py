"""asyncpg, given protoport's loop, against a real PostgreSQL: queries, prepared
statements, transactions, COPY in both directions, LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest

from ._ecosystem import run_in_loop
from ._servers import POSTGRES_DATABASE, POSTGRES_USER, Running

asyncpg = pytest.importorskip("asyncpg", reason="needs the ecosystem extra")

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def connect(postgres: Running, loop: asyncio.AbstractEventLoop) -> Any:
    return await asyncpg.connect(
        host=postgres.host,
        port=postgres.port,
        user=POSTGRES_USER,
        database=POSTGRES_DATABASE,
        loop=loop,
    )


async def test_queries_and_prepared_statements(postgres: Running) -> None:
    async def scenario(loop: asyncio.AbstractEventLoop) -> Any:
        conn = await connect(postgres, loop)
        try:
            simple = await conn.fetchval("SELECT 6 * 7")
            rows = await conn.fetch(
                "SELECT n, repeat('x', n) AS s FROM generate_series(1, 3) AS n"
            )
            statement = await conn.prepare("SELECT $1::int + $2::int")
            prepared = [await statement.fetchval(i, 100) for i in range(3)]
            # A result far larger than one socket read.
            big = await conn.fetchval("SELECT repeat('y', 1000000)")
        finally:
            await conn.close()
        return simple, [tuple(row) for row in rows], prepared, big

    simple, rows, prepared, big = await run_in_loop(scenario)
    assert simple == 42
    assert rows == [(1, "x"), (2, "xx"), (3, "xxx")]
    assert prepared == [100, 101, 102]
    assert big == "y" * 1000000


async def test_transactions_commit_and_roll_back(postgres: Running) -> None:
    async def scenario(loop: asyncio.AbstractEventLoop) -> Any:
        conn = await connect(postgres, loop)
        try:
            await conn.execute("CREATE TEMP TABLE t (n int)")
            async with conn.transaction():
                await conn.execute("INSERT INTO t VALUES (1), (2)")
            error = None
            try:
                async with conn.transaction():
                    await conn.execute("INSERT INTO t VALUES (3)")
                    await conn.execute("CREATE UNIQUE INDEX ON t (n)")
                    await conn.execute("INSERT INTO t VALUES (3)")
            except asyncpg.UniqueViolationError as exc:
                error = type(exc)
            return error, await conn.fetch("SELECT n FROM t ORDER BY n")
        finally:
            await conn.close()

    error, rows = await run_in_loop(scenario)
    assert error is asyncpg.UniqueViolationError
    assert [row["n"] for row in rows] == [1, 2]


async def test_copy_in_and_out(postgres: Running) -> None:
    records = [(i, f"row {i}") for i in range(5000)]

    async def scenario(loop: asyncio.AbstractEventLoop) -> Any:
        conn = await connect(postgres, loop)
        try:
            await conn.execute("CREATE TEMP TABLE t (n int, s text)")
            await conn.copy_records_to_table("t", records=records)
            out = io.BytesIO()
            await conn.copy_from_query("SELECT * FROM t ORDER BY n", output=out)
            return out.getvalue()
        finally:
            await conn.close()

    copied = await run_in_loop(scenario)
    assert copied == b"".join(b"%d\trow %d\n" % (i, i) for i in range(5000))


async def test_listen_notify(postgres: Running) -> None:
    async def scenario(loop: asyncio.AbstractEventLoop) -> Any:
        listening = await connect(postgres, loop)
        notifying = await connect(postgres, loop)
        received: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        try:
            await listening.add_listener(
                "news",
                lambda conn, pid, channel, payload: received.put_nowait(
                    (channel, payload)
                ),
            )
            await notifying.execute("NOTIFY news, 'first'")
            await notifying.execute("SELECT pg_notify('news', 'second')")
            return [await received.get(), await received.get()]
        finally:
            await listening.close()
            await notifying.close()

    assert await run_in_loop(scenario) == [("news", "first"), ("news", "second")]

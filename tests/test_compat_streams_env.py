"""The compatibility suite's streams API per implementation (``env.streams``),
the ``since=`` option of scenarios, and the reference rule for rows newer than
the reference's Python."""

from __future__ import annotations

import asyncio
import sys

import pytest

import protoport
from _helpers import make_scenario
from protoport.compat import (
    Env,
    Outcome,
    load_implementation,
    run_scenario,
    sections,
)
from protoport.compat._check import policy_errors


@pytest.mark.parametrize(
    ("name", "module", "reader_module"),
    [
        ("asyncio", asyncio, "asyncio.streams"),
        ("protoport-trio", protoport, "protoport"),
        ("protoport-asyncio", protoport, "protoport"),
    ],
)
def test_env_streams_is_the_implementations_api(
    name: str, module: object, reader_module: str
) -> None:
    seen: list[str] = []

    async def check(env: Env) -> None:
        assert env.streams is module
        stream = await env.open_stream(peer_sends=b"line\n")
        seen.append(type(stream.reader).__module__)
        assert await stream.reader.readline() == b"line\n"
        stream.writer.write(b"back")
        assert await stream.peer.recv_exactly(4) == b"back"

    outcome = run_scenario(
        load_implementation(name), make_scenario(check, section=sections.STREAM_READER)
    )
    assert outcome.status == "pass", outcome.reason
    assert seen[0] == reader_module


def test_since_newer_than_the_api_is_unsupported() -> None:
    ran: list[bool] = []

    async def check(env: Env) -> None:
        ran.append(True)

    future = (sys.version_info[0], sys.version_info[1] + 1)
    outcome = run_scenario(
        load_implementation("asyncio"),
        make_scenario(check, section=sections.STREAM_READER, since=future),
    )
    assert outcome == Outcome(
        "unsupported",
        "needs the asyncio {}.{} API (this is {}.{})".format(
            *future, *sys.version_info[:2]
        ),
    )
    assert ran == []
    # protoport offers the 3.13 API on every Python.
    outcome = run_scenario(
        load_implementation("protoport-asyncio"),
        make_scenario(check, section=sections.STREAM_READER, since=(3, 13)),
    )
    assert outcome.status == "pass"
    assert ran == [True]


def test_reference_rule_skips_rows_newer_than_its_python() -> None:
    def matrix(python: str, status: str) -> dict[str, object]:
        return {
            "python": python,
            "implementations": [{"name": "asyncio", "reference": True}],
            "sections": [
                {
                    "title": "t",
                    "scenarios": [
                        {
                            "id": "x.y",
                            "since": "3.13",
                            "results": {"asyncio": {"status": status}},
                        }
                    ],
                }
            ],
        }

    assert policy_errors(matrix("3.10.13", "unsupported")) == ([], [])
    _, reference_errors = policy_errors(matrix("3.13.0", "unsupported"))
    assert len(reference_errors) == 1

"""The sections of the matrix: the asyncio documentation's sections, in its
order. A scenario names its section with one of these constants; the matrix
groups its rows by section and shows the sections in :data:`SECTIONS`' order
(others after them, alphabetically)."""

from __future__ import annotations

#: Between the levels of a section title.
SEPARATOR = " \u203a "


def section(*levels: str) -> str:
    """A section title from its levels, e.g. ``section("Transports", "Base
    Transport")``."""
    return SEPARATOR.join(levels)


TRANSPORTS_HIERARCHY = section("Transports", "Transports Hierarchy")
BASE_TRANSPORT = section("Transports", "Base Transport")
READ_TRANSPORTS = section("Transports", "Read-only Transports")
WRITE_TRANSPORTS = section("Transports", "Write-only Transports")
FLOW_CONTROL = section("Transports", "Write-only Transports", "Flow control")
DATAGRAM_TRANSPORTS = section("Transports", "Datagram Transports")
SUBPROCESS_TRANSPORTS = section("Transports", "Subprocess Transports")
TLS_TRANSPORTS = section("Transports", "TLS")
BASE_PROTOCOL = section("Protocols", "Base Protocol")
STREAMING_PROTOCOLS = section("Protocols", "Streaming Protocols")
BUFFERED_PROTOCOLS = section("Protocols", "Buffered Streaming Protocols")
DATAGRAM_PROTOCOLS = section("Protocols", "Datagram Protocols")
SUBPROCESS_PROTOCOLS = section("Protocols", "Subprocess Protocols")
OPENING_CONNECTIONS = section("Event Loop", "Opening network connections")
CREATING_SERVERS = section("Event Loop", "Creating network servers")
SERVER_OBJECTS = section("Event Loop", "Server Objects")
TLS_UPGRADE = section("Event Loop", "TLS Upgrade")
PIPES = section("Event Loop", "Working with pipes")
SUBPROCESSES = section("Event Loop", "Running Subprocesses")
ERROR_HANDLING = section("Event Loop", "Error Handling API")
STREAM_FUNCTIONS = section("Streams", "Stream Functions")
STREAM_READER = section("Streams", "StreamReader")
STREAM_WRITER = section("Streams", "StreamWriter")
CREATING_SUBPROCESSES = section("Subprocesses", "Creating Subprocesses")
INTERACTING_WITH_SUBPROCESSES = section("Subprocesses", "Interacting with Subprocesses")

#: Every known section, in the documentation's order.
SECTIONS: tuple[str, ...] = (
    TRANSPORTS_HIERARCHY,
    BASE_TRANSPORT,
    READ_TRANSPORTS,
    WRITE_TRANSPORTS,
    FLOW_CONTROL,
    DATAGRAM_TRANSPORTS,
    SUBPROCESS_TRANSPORTS,
    TLS_TRANSPORTS,
    BASE_PROTOCOL,
    STREAMING_PROTOCOLS,
    BUFFERED_PROTOCOLS,
    DATAGRAM_PROTOCOLS,
    SUBPROCESS_PROTOCOLS,
    OPENING_CONNECTIONS,
    CREATING_SERVERS,
    SERVER_OBJECTS,
    TLS_UPGRADE,
    PIPES,
    SUBPROCESSES,
    ERROR_HANDLING,
    STREAM_FUNCTIONS,
    STREAM_READER,
    STREAM_WRITER,
    CREATING_SUBPROCESSES,
    INTERACTING_WITH_SUBPROCESSES,
)

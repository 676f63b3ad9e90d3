"""A small DNS-style request/response exchange over UDP, on one loop.

A name server endpoint answers lookups from a table; a resolver endpoint sends
numbered queries, matches each answer to its query by number (answers may come
in any order, and a stray one is ignored), and sends a query again when no
answer came in time. Both are plain ``asyncio.DatagramProtocol`` classes.

The wire format (not real DNS, to stay short): a query is a 2-byte number and a
name; an answer is the same number, a status byte (0: found, 3: no such name)
and, when found, the 4 bytes of an IPv4 address.
Run: python udp_dns_lookup.py [--backend trio|asyncio]
"""

import argparse
import asyncio
import ipaddress
import struct

import anyio

import protoport

FOUND, NO_SUCH_NAME = 0, 3
ZONE = {
    "www.example.test": "192.0.2.10",
    "mail.example.test": "192.0.2.25",
}


class NameServer(asyncio.DatagramProtocol):
    def __init__(self, zone):
        self.zone = zone

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        if len(data) < 3:
            return  # not a query: ignore it, as a name server would
        number, name = data[:2], data[2:].decode("ascii", "replace")
        address = self.zone.get(name)
        if address is None:
            answer = number + bytes([NO_SUCH_NAME])
        else:
            answer = number + bytes([FOUND]) + ipaddress.IPv4Address(address).packed
        self.transport.sendto(answer, addr)


class LookupFailed(Exception):
    pass


class Resolver(asyncio.DatagramProtocol):
    """Sends queries to the server its endpoint is connected to."""

    def __init__(self, loop, timeout=0.5, attempts=3):
        self.loop = loop
        self.timeout = timeout
        self.attempts = attempts
        self.next_number = 1
        #: number -> (future, query, attempts left, timer)
        self.pending = {}

    def connection_made(self, transport):
        self.transport = transport

    def lookup(self, name):
        """Return a future: the name's address, or LookupFailed."""
        number = self.next_number
        self.next_number = (number + 1) % 65536
        query = struct.pack("!H", number) + name.encode("ascii")
        future = self.loop.create_future()
        self.pending[number] = (future, query, self.attempts, None)
        self._send(number)
        return future

    def _send(self, number):
        future, query, attempts, _ = self.pending[number]
        self.transport.sendto(query)
        timer = self.loop.call_later(self.timeout, self._timed_out, number)
        self.pending[number] = (future, query, attempts - 1, timer)

    def _timed_out(self, number):
        future, _, attempts, _ = self.pending[number]
        if attempts:
            self._send(number)
        else:
            del self.pending[number]
            future.set_exception(LookupFailed("no answer"))

    def datagram_received(self, data, addr):
        if len(data) < 3:
            return
        (number,) = struct.unpack("!H", data[:2])
        entry = self.pending.pop(number, None)
        if entry is None:
            return  # a late answer to a query sent twice, or a stray datagram
        future, _, _, timer = entry
        timer.cancel()
        if data[2] == FOUND and len(data) == 7:
            future.set_result(str(ipaddress.IPv4Address(data[3:7])))
        else:
            future.set_exception(LookupFailed("no such name"))

    def error_received(self, exc):
        print("Error received:", exc, flush=True)

    def connection_lost(self, exc):
        for future, _, _, timer in self.pending.values():
            if timer is not None:
                timer.cancel()
            future.cancel()


async def main():
    loop = protoport.get_running_loop()  # was: asyncio.get_running_loop()
    server, _ = await loop.create_datagram_endpoint(
        lambda: NameServer(ZONE), local_addr=("127.0.0.1", 0)
    )
    client, resolver = await loop.create_datagram_endpoint(
        lambda: Resolver(loop), remote_addr=server.get_extra_info("sockname")
    )
    try:
        names = ["www.example.test", "mail.example.test", "ftp.example.test"]
        # All queries are in flight at once; each answer finds its query.
        futures = [resolver.lookup(name) for name in names]
        for name, future in zip(names, futures, strict=True):
            try:
                print(f"{name}: {await future}", flush=True)
            except LookupFailed as exc:
                print(f"{name}: {exc}", flush=True)
    finally:
        client.close()
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    args = parser.parse_args()
    anyio.run(main, backend=args.backend)

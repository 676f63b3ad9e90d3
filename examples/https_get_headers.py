"""Get HTTP headers (asyncio docs, streams: "Get HTTP headers"), over HTTPS.

The asyncio original, apart from the line that opens the connection, two
additions so that the tests can aim it at a local server (the port may be given
in the URL, and ``--cafile`` names the CA to trust instead of the system's), and
the command line that picks the runtime.
Run: python https_get_headers.py URL [--backend trio|asyncio] [--cafile CA.pem]
"""

import argparse
import ssl
import urllib.parse

import anyio

import protoport


async def print_http_headers(url, cafile=None):
    url = urllib.parse.urlsplit(url)
    if url.scheme == "https":
        # ssl=True: a default context, which verifies the server's certificate
        # and host name. With --cafile, the same checks against that CA.
        context = True if cafile is None else ssl.create_default_context(cafile=cafile)
        # was: asyncio.open_connection(url.hostname, 443, ssl=True)
        reader, writer = await protoport.open_connection(
            url.hostname, url.port or 443, ssl=context
        )
    else:
        # was: asyncio.open_connection(url.hostname, 80)
        reader, writer = await protoport.open_connection(url.hostname, url.port or 80)

    query = f"HEAD {url.path or '/'} HTTP/1.0\r\nHost: {url.hostname}\r\n\r\n"

    writer.write(query.encode("latin-1"))
    while True:
        line = await reader.readline()
        if not line:
            break

        line = line.decode("latin1").rstrip()
        if line:
            print(f"HTTP header> {line}", flush=True)

    # Ignore the body, close the socket
    writer.close()
    await writer.wait_closed()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    parser.add_argument("--cafile", default=None, help="PEM file of the CA to trust")
    args = parser.parse_args()
    anyio.run(print_http_headers, args.url, args.cafile, backend=args.backend)

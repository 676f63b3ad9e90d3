"""The certificates of the TLS scenarios: a test CA and a server certificate,
made once per process."""

from __future__ import annotations

import ssl
from typing import Any

from ._optional import optional_package


class TLSMaterial:
    """A test CA and a server certificate (``localhost``, ``127.0.0.1``,
    ``::1``), from :meth:`Env.tls`. Each method returns a new context."""

    def __init__(self, ca: Any, cert: Any) -> None:
        self._ca = ca
        self._cert = cert

    def server_context(self) -> ssl.SSLContext:
        """A server context presenting the certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts the test CA (and checks host names)."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self._ca.configure_trust(context)
        return context

    def untrusting_client_context(self) -> ssl.SSLContext:
        """A client context that verifies certificates but does not trust the
        test CA: the handshake fails with ``ssl.SSLCertVerificationError``."""
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


_TLS_MATERIAL: TLSMaterial | None = None


def tls_material() -> TLSMaterial:
    """The process's :class:`TLSMaterial`, made on first use (key generation
    takes a while: once per worker process)."""
    global _TLS_MATERIAL
    if _TLS_MATERIAL is None:
        trustme = optional_package("trustme")
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
        _TLS_MATERIAL = TLSMaterial(ca, cert)
    return _TLS_MATERIAL

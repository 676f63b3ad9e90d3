"""asyncio's transports, protocols and streams on Trio and asyncio, through AnyIO."""

from ._loop import Loop as Loop
from ._loop import get_running_loop as get_running_loop
from ._loop import open_loop as open_loop
from ._server import Server as Server
from ._socket_stream import SocketStream as SocketStream
from ._stream_transport import StreamTransport as StreamTransport
from ._version import __version__ as __version__
from ._write_buffer import WriteBuffer as WriteBuffer

__all__ = [
    "Loop",
    "Server",
    "SocketStream",
    "StreamTransport",
    "WriteBuffer",
    "__version__",
    "get_running_loop",
    "open_loop",
]

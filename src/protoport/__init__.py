"""asyncio's transports, protocols and streams on Trio and asyncio, through AnyIO."""

from ._anyio_adapters import as_anyio_stream as as_anyio_stream
from ._anyio_adapters import open_stream_pair as open_stream_pair
from ._loop import Loop as Loop
from ._loop import get_running_loop as get_running_loop
from ._loop import open_loop as open_loop
from ._server import Server as Server
from ._socket_stream import SocketStream as SocketStream
from ._stream_api import open_connection as open_connection
from ._stream_api import open_unix_connection as open_unix_connection
from ._stream_api import start_server as start_server
from ._stream_api import start_unix_server as start_unix_server
from ._stream_reader import StreamReader as StreamReader
from ._stream_transport import StreamTransport as StreamTransport
from ._stream_writer import StreamReaderProtocol as StreamReaderProtocol
from ._stream_writer import StreamWriter as StreamWriter
from ._version import __version__ as __version__
from ._write_buffer import WriteBuffer as WriteBuffer

__all__ = [
    "Loop",
    "Server",
    "SocketStream",
    "StreamReader",
    "StreamReaderProtocol",
    "StreamTransport",
    "StreamWriter",
    "WriteBuffer",
    "__version__",
    "as_anyio_stream",
    "get_running_loop",
    "open_connection",
    "open_loop",
    "open_stream_pair",
    "open_unix_connection",
    "start_server",
    "start_unix_server",
]

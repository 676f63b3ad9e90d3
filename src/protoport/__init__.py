"""asyncio's transports, protocols and streams on Trio and asyncio, through AnyIO."""

from ._core._socket_stream import SocketStream as SocketStream
from ._core._write_buffer import WriteBuffer as WriteBuffer
from ._loop._loop import Loop as Loop
from ._loop._loop import get_running_loop as get_running_loop
from ._loop._loop import open_loop as open_loop
from ._loop._servers import Server as Server
from ._streams._anyio_adapters import as_anyio_stream as as_anyio_stream
from ._streams._anyio_adapters import open_stream_pair as open_stream_pair
from ._streams._functions import open_connection as open_connection
from ._streams._functions import open_unix_connection as open_unix_connection
from ._streams._functions import start_server as start_server
from ._streams._functions import start_unix_server as start_unix_server
from ._streams._reader import StreamReader as StreamReader
from ._streams._subprocess import Process as Process
from ._streams._subprocess import create_subprocess_exec as create_subprocess_exec
from ._streams._subprocess import create_subprocess_shell as create_subprocess_shell
from ._streams._writer import StreamReaderProtocol as StreamReaderProtocol
from ._streams._writer import StreamWriter as StreamWriter
from ._transports._datagram import DatagramTransport as DatagramTransport
from ._transports._pipe import ReadPipeTransport as ReadPipeTransport
from ._transports._pipe import WritePipeTransport as WritePipeTransport
from ._transports._stream import StreamTransport as StreamTransport
from ._transports._subprocess import SubprocessTransport as SubprocessTransport
from ._version import __version__ as __version__

__all__ = [
    "DatagramTransport",
    "Loop",
    "Process",
    "ReadPipeTransport",
    "Server",
    "SocketStream",
    "StreamReader",
    "StreamReaderProtocol",
    "StreamTransport",
    "StreamWriter",
    "SubprocessTransport",
    "WriteBuffer",
    "WritePipeTransport",
    "__version__",
    "as_anyio_stream",
    "create_subprocess_exec",
    "create_subprocess_shell",
    "get_running_loop",
    "open_connection",
    "open_loop",
    "open_stream_pair",
    "open_unix_connection",
    "start_server",
    "start_unix_server",
]

# Re-exported names say where users find them, as AnyIO's and Trio's do.
for __value in list(locals().values()):
    if getattr(__value, "__module__", "").startswith("protoport._"):
        __value.__module__ = __name__
del __value

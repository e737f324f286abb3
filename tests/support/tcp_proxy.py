"""A loopback TCP proxy that a test can cut and restore, to play a database outage."""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import threading
import time

from tests.support.ports import free_port


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` refuses and drops every connection;
    `freeze()` keeps every connection open but forwards nothing, as a database that stops
    answering (a hung server, a stalled link) until `thaw()`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._accepting = threading.Event()
        self._flowing = threading.Event()
        self._flowing.set()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # While nothing listens, a client retrying the port can be given it as its own
        # local port (a TCP self-connect) and hold it for a moment: wait for it.
        deadline = time.monotonic() + 10
        while True:
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError as error:
                if error.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    listener.close()
                    raise
                time.sleep(0.1)
        listener.listen(128)
        self._listener = listener
        self._accepting.set()
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """New connections are refused and open ones are reset, as when a link goes down."""
        self._accepting.clear()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                connection.close()

    def freeze(self) -> None:
        """Connections stay open and new ones are accepted, but no byte goes through."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def restore(self) -> None:
        self.start()

    def close(self) -> None:
        self.cut()

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._accepting.is_set():
            try:
                client, _address = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections.update({client, upstream})
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, left: socket.socket, right: socket.socket) -> None:
        pair = {left: right, right: left}
        try:
            while True:
                if not self._flowing.wait(timeout=1.0):
                    continue  # frozen: what was sent waits in the socket buffers
                readable, _w, _x = select.select(list(pair), [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.close()
            with self._lock:
                self._connections.difference_update(pair)

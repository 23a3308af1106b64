"""Arbeiter's ``Arbeiter``: a worker that takes an item off a Kestrel queue,
hands it to a function, and forwards what the function returns to zero,
one or many other queues.

It speaks Kestrel's memcache text protocol to ``arbiter-gateway`` (its
``--kestrel`` port, 22133 by default), over a plain socket: no memcache
library is needed. Each item is taken as a reliable read (``get
q/open/t=MS``), the handler's outputs are stored (``set``, each answered
``STORED`` after the broker's commit), and only then is the item closed
(``get q/close``), so an item whose outputs were not all stored is never
lost. A handler that raises puts its item back at the head of its queue
(``get q/abort``) and the exception goes on up, as Arbeiter did.

The connection is made at the first use in each process, so one
``Arbeiter`` may be shared by ``multiprocessing`` children (each its own
connection).
"""

from __future__ import annotations

import os
import socket
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

from .errors import ArbiterError

#  how long one get waits for an item at the gateway, in ms: run() checks
#  stop() between gets
_WAIT_MS = 1000


class KestrelError(ArbiterError):
    """The gateway refused a command (its ``SERVER_ERROR``, ``CLIENT_ERROR``,
    ``NOT_STORED`` or ``ERROR`` line), or answered what Kestrel does not."""


def _bytes(value: Union[bytes, bytearray, str]) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode('utf-8')
    raise TypeError('an item is bytes or str, not %r' % (value,))


class Arbeiter:
    """A worker of one input queue: ``Arbeiter(servers, queue, handler)``.

    ``servers`` is a list of ``"host:port"`` (the first that answers is
    used; another is tried when its connection fails); ``handler(a, data)``
    is called with this object and the item's bytes, and returns a dict
    ``{queue: data}``, a list (or any iterable, a generator too) of
    ``(queue, data)`` pairs, whose data (bytes or str) is pushed to those
    queues, or a falsey value: the item is consumed (a sink, or an item
    dropped on purpose). If it raises, the item goes back to the head of
    the queue and the exception is raised from ``run``.
    """

    def __init__(self, servers: Sequence[str], queue: str,
                 handler: Callable[['Arbeiter', bytes], Any], timeout: float = 30.0) -> None:
        if isinstance(servers, str):
            servers = [servers]
        if not servers:
            raise ValueError('servers: give at least one "host:port"')
        self.servers = list(servers)
        self.queue = queue
        self.handler = handler
        self.timeout = timeout  # seconds a command may take, besides a get's wait
        self._sock: Optional[socket.socket] = None
        self._pid = 0
        self._buf = b''
        self._stopping = False

    #  the connection

    def _connect(self) -> socket.socket:
        if self._sock is not None and self._pid == os.getpid():
            return self._sock
        #  a child of fork must not share its parent's socket
        self._sock = None
        self._buf = b''
        error: Optional[OSError] = None
        for server in self.servers:
            host, _, port = server.rpartition(':')
            try:
                sock = socket.create_connection((host.strip('[]') or '127.0.0.1', int(port)),
                                                timeout=self.timeout + _WAIT_MS / 1000.0)
            except OSError as e:
                error = e
                continue
            self._sock, self._pid = sock, os.getpid()
            return sock
        raise KestrelError('cannot reach a Kestrel server at %s: %s'
                           % (', '.join(self.servers), error))

    def close(self) -> None:
        """Closes the connection (an item still open goes back to its queue)."""
        if self._sock is not None and self._pid == os.getpid():
            self._sock.close()
        self._sock = None
        self._buf = b''

    def _line(self) -> bytes:
        assert self._sock is not None
        while b'\r\n' not in self._buf:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError('the Kestrel server closed the connection')
            self._buf += chunk
        line, self._buf = self._buf.split(b'\r\n', 1)
        return line

    def _exact(self, n: int) -> bytes:
        assert self._sock is not None
        while len(self._buf) < n + 2:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError('the Kestrel server closed the connection')
            self._buf += chunk
        data, self._buf = self._buf[:n], self._buf[n + 2:]
        return data

    def _command(self, line: bytes, data: Optional[bytes] = None) -> Tuple[bytes, Optional[bytes]]:
        """Sends one command; returns its answer line and a get's item."""
        sock = self._connect()
        try:
            sock.sendall(line + b'\r\n' + (data + b'\r\n' if data is not None else b''))
            answer = self._line()
            item = None
            if answer.startswith(b'VALUE '):
                item = self._exact(int(answer.split()[3]))
                end = self._line()
                if end != b'END':
                    raise KestrelError('unexpected answer %r after an item' % end[:64])
        except OSError:
            self.close()
            raise
        if answer.split(b' ', 1)[0] in (b'ERROR', b'CLIENT_ERROR', b'SERVER_ERROR', b'NOT_STORED'):
            raise KestrelError('%s: %s' % (line.decode('utf-8', 'replace')[:64],
                                           answer.decode('utf-8', 'replace')))
        return answer, item

    #  Kestrel's commands

    def push(self, data: Union[bytes, str], queue: Optional[str] = None) -> None:
        """Stores an item in ``queue`` (this worker's input queue by default);
        returns once the broker has committed it."""
        payload = _bytes(data)
        answer, _ = self._command(b'set %s 0 0 %d' % ((queue or self.queue).encode('utf-8'),
                                                       len(payload)), payload)
        if answer != b'STORED':
            raise KestrelError('set %s: %r' % (queue or self.queue, answer[:64]))

    def _get(self, options: str) -> Optional[bytes]:
        return self._command(('get %s/%s' % (self.queue, options)).encode('utf-8'))[1]

    #  the loop

    def _outputs(self, returned: Any) -> Iterable[Tuple[str, Any]]:
        if isinstance(returned, dict):
            return list(returned.items())
        pairs: Iterable[Tuple[str, Any]] = returned
        return pairs

    def work_one(self, wait_ms: int = _WAIT_MS) -> bool:
        """Takes one item (waiting up to ``wait_ms``), runs the handler and
        forwards its outputs; returns whether there was an item."""
        data = self._get('open/t=%d' % wait_ms)
        if data is None:
            return False
        try:
            returned = self.handler(self, data)
            if returned:
                for queue, value in self._outputs(returned):
                    self.push(value, queue)
        except BaseException:
            try:
                self._get('abort')
            except (OSError, KestrelError):
                pass  # the connection is gone: the gateway puts the item back itself
            raise
        self._get('close')
        return True

    def run(self) -> None:
        """Works items of the input queue until ``stop`` (or the handler
        raises: the exception goes on up, its item back at the head)."""
        self._stopping = False
        try:
            while not self._stopping:
                self.work_one()
        finally:
            self.close()

    start = run  # Arbeiter's README runs a job with either

    def stop(self) -> None:
        """Makes ``run`` return after the item it works on (within a second
        when the queue is empty)."""
        self._stopping = True


__all__: List[str] = ['Arbeiter', 'KestrelError']

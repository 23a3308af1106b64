"""Free loopback ports for test servers, taken below the kernel's ephemeral
range.

A port that bind(port 0) hands out lies inside the ephemeral range, the
range connect() draws its local ports from. A test that kills a server and
starts it again on the same port leaves that port free for a moment, and
an outgoing connection of any process on the machine (the other pytest
worker, the other build variant, the server's own client sockets) may take
it: the restarted server then fails with "Address already in use". That
happened once in CI. Below the ephemeral range no connect() ever lands, so
a port stays ours between a kill and a restart.

The range is cut into slots so that processes running side by side (two
build variants, each with its pytest-xdist workers, and the soak tool one
of them starts) draw from ports the others never draw from. Two whole
test runs side by side (two clones on one machine) share the slots, so
each port handed out is also claimed, machine-wide, for as long as the
process that took it lives: a file named for the port in a directory of
/tmp, holding the taker's PID, written under a lock on that directory.
A port another live process has claimed is passed over.
"""

import atexit
import fcntl
import os
import random
import socket
import tempfile

SLOTS = 16
FIRST = 10000

# Ports never handed out: amqplib's own test suite (test_amqplib_suite.py,
# run unmodified) uses these two as they are, its 'Connection refused'
# connecting to 23450 with nothing there and its 'with a given connection
# timeout' listening on 31991. Both lie in the sanitized build's slots (its
# second pytest-xdist worker's, its soak's), whose servers may hold them
# while the suite runs in the other worker (a gateway's HTTP and Kestrel
# ports were seen on 23450): a server on 23450 answers that connect (the
# test fails, or waits out node's 90 s), one on 31991 fails that listen.
RESERVED = frozenset({23450, 31991})


def ephemeral_low():
    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def slot_of(build, worker):
    """The slot of a pytest process: its build variant (release or asan)
    and its pytest-xdist worker ('gw0', 'gw1', ... or None)."""
    variant = 1 if 'asan' in build else 0
    number = int(worker[2:]) if worker and worker[2:].isdigit() else 0
    return variant * (SLOTS // 2) + number % (SLOTS // 2 - 1)


def soak_slot(build):
    """The slot the soak tool draws from when a test starts it: the last
    of its variant's half, which no pytest worker uses."""
    return slot_of(build, None) + SLOTS // 2 - 1


class PortPool:
    """Ports of one slot, each handed out once, each free when given. part
    (index, count) takes only the index-th of count equal parts of the
    slot, so that tools that share a slot (the two soaks, which a test run
    may start side by side) never draw the same port."""

    def __init__(self, slot, part=(0, 1)):
        low, high = FIRST, ephemeral_low()
        self.given = set()
        if high - low < SLOTS * 64:
            self.span = None  # no room below the ephemeral range: ask the kernel
            return
        width = (high - low) // SLOTS
        first = low + (slot % SLOTS) * width
        index, count = part
        self.span = (first + index * width // count, first + (index + 1) * width // count)

    def take(self):
        for _ in range(200):
            port = self._candidate()
            if (port in self.given or port in RESERVED or not self._free(port)
                    or not _CLAIMS.claim(port)):
                continue
            self.given.add(port)
            return port
        raise RuntimeError('no free loopback port in %r' % (self.span,))

    def _candidate(self):
        if self.span is None:
            with socket.socket() as s:
                s.bind(('127.0.0.1', 0))
                return s.getsockname()[1]
        return random.randrange(*self.span)

    @staticmethod
    def _free(port):
        # without SO_REUSEADDR, so that a port with a connection lingering
        # in TIME_WAIT counts as taken, and is passed over
        with socket.socket() as s:
            try:
                s.bind(('127.0.0.1', port))
            except OSError:
                return False
        return True


class Claims:
    """Ports claimed by the live processes of the machine: a file for each
    in one directory, holding its taker's PID. A claim outlives nothing:
    one whose process is gone (ended, killed) is taken over, and a process
    removes its own at exit. Without the directory (no /tmp to write),
    nothing is claimed and the slots alone keep runs apart."""

    def __init__(self):
        self.path = os.path.join(tempfile.gettempdir(), 'arbiter-test-ports')
        self.mine = []
        try:
            os.makedirs(self.path, exist_ok=True)
            os.chmod(self.path, 0o1777)
        except OSError:
            pass
        atexit.register(self.release)

    def claim(self, port):
        try:
            lock = os.open(self.path, os.O_RDONLY)
        except OSError:
            return True
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            name = os.path.join(self.path, str(port))
            if _alive(_holder(name)):
                return False
            with open(name, 'w') as f:
                f.write('%d\n' % os.getpid())
            self.mine.append(name)
            return True
        except OSError:
            return True
        finally:
            os.close(lock)

    def release(self):
        for name in self.mine:
            if _holder(name) == os.getpid():
                try:
                    os.unlink(name)
                except OSError:
                    pass
        self.mine = []


def _holder(name):
    try:
        with open(name) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _alive(pid):
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_CLAIMS = Claims()


def pool_from_env(default_slot, part=(0, 1)):
    """The pool named by ARBITER_PORT_SLOT, or default_slot; part as
    PortPool's."""
    value = os.environ.get('ARBITER_PORT_SLOT', '')
    return PortPool(int(value) if value.isdigit() else default_slot, part)

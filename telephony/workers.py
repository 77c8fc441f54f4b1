"""`sipserver --workers N`: one port, N engine processes, a supervisor that keeps them running.

The supervisor binds every socket itself, in a fixed order, before it forks: socket i of the
UDP SO_REUSEPORT group is worker i's, and the steering program (`telephony.reuseport`) picks
sockets by that index. Because the supervisor keeps its copies open, a worker that dies does
not leave the group (which would move another socket into its slot); datagrams for it wait in
its socket's buffer until the supervisor has forked its replacement, which serves the same
socket. TCP and TLS listeners are bound the same way, one per worker, and spread by the kernel.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from telephony import reuseport

log = logging.getLogger("telephony.workers")

RESTART_BACKOFF = 1.0  # a worker that keeps dying is restarted at most once a second
STOP_GRACE = 15.0
_SIGNALS = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT)


@dataclass
class Listeners:
    udp: socket.socket
    tcp: socket.socket
    tls: socket.socket | None = None

    def all(self) -> list[socket.socket]:
        return [s for s in (self.udp, self.tcp, self.tls) if s is not None]


def bind_listeners(
    host: str,
    port: int,
    tls_port: int | None,
    workers: int,
    *,
    spread_from: Iterable[str],
    udp_buffer_bytes: int = 8 * 1024 * 1024,
    attempts: int = 8,
) -> list[Listeners]:
    """Binds UDP+TCP (and TLS) sockets for `workers` processes on one port and attaches the
    steering program to the UDP group. Port 0 picks a port free for both UDP and TCP."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for attempt in range(attempts):
        bound: list[socket.socket] = []
        try:
            groups = []
            udp_port = port
            for _ in range(workers):
                udp = _bind(family, socket.SOCK_DGRAM, host, udp_port, bound)
                for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                    with contextlib.suppress(OSError):
                        udp.setsockopt(socket.SOL_SOCKET, option, udp_buffer_bytes)
                udp_port = udp.getsockname()[1]
                tcp = _bind(family, socket.SOCK_STREAM, host, udp_port, bound)
                tls = _bind(family, socket.SOCK_STREAM, host, tls_port, bound) if tls_port else None
                groups.append(Listeners(udp, tcp, tls))
            break
        except OSError:
            for sock in bound:
                sock.close()
            # With port 0 an outgoing TCP connection may hold the number the kernel gave UDP.
            if port != 0 or attempt == attempts - 1:
                raise
    try:
        reuseport.attach(groups[0].udp, reuseport.steering_program(workers, spread_from))
    except OSError as error:  # a kernel before 4.5, or a sandbox without the option
        log.warning("no SO_REUSEPORT program (%s): packets spread by source address only", error)
    return groups


def _bind(family: int, kind: int, host: str, port: int, bound: list[socket.socket]) -> socket.socket:
    sock = socket.socket(family, kind)
    bound.append(sock)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if kind == socket.SOCK_STREAM:
        sock.listen(1024)
    return sock


def supervise(listeners: list[Listeners], serve: Callable[[int, Listeners], None]) -> None:
    """Forks `serve(i, listeners[i])` for every i and restarts any that exits until SIGTERM or
    SIGINT, which it passes on to the workers before waiting for them."""
    original_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    children: dict[int, int] = {}
    started: dict[int, float] = {}

    def spawn(index: int) -> None:
        wait = started.get(index, -RESTART_BACKOFF) + RESTART_BACKOFF - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        started[index] = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                _die_with_parent()
                for i, group in enumerate(listeners):
                    if i != index:
                        for sock in group.all():
                            sock.close()
                signal.pthread_sigmask(signal.SIG_SETMASK, original_mask)
                serve(index, listeners[index])
                code = 0
            except BaseException:  # noqa: BLE001 — a worker's failure must not unwind into the supervisor's code
                log.exception("sipserver worker %d failed", index)
            finally:
                os._exit(code)
        children[pid] = index

    for index in range(len(listeners)):
        spawn(index)
    log.info("sipserver supervisor %d: %d workers", os.getpid(), len(listeners))
    stopping = False
    deadline = None
    while children:
        info = signal.sigtimedwait(_SIGNALS, 0.5)
        if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT) and not stopping:
            stopping, deadline = True, time.monotonic() + STOP_GRACE
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        if stopping and deadline is not None and time.monotonic() > deadline:
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = None
        for pid, status in _reap():
            index = children.pop(pid, None)
            if index is None or stopping:
                continue
            log.warning(
                "sipserver worker %d (pid %d) exited (%s); restarting it", index, pid, _describe(status)
            )
            spawn(index)
    signal.pthread_sigmask(signal.SIG_SETMASK, original_mask)


def _reap() -> list[tuple[int, int]]:
    done = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done.append((pid, status))


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def _die_with_parent() -> None:
    # A worker must not outlive a supervisor killed with -9: it would hold the port unsupervised.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

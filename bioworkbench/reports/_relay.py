"""The process jupyter_client starts as a report's kernel when a fork server is running.

Run as ``python -I -S _relay.py SOCKET -- KERNEL_ARGV...`` (standard library only, so that it starts
in a few milliseconds): it asks the fork server listening on the Unix socket ``SOCKET`` for a kernel
(:mod:`bioworkbench.reports.forkserver`), handing over its working folder, its environment and its
standard streams, then stands in for that kernel: the signals jupyter_client sends it (interrupt,
terminate) are passed on to the kernel's process group, and it exits when the kernel exits. When
jupyter_client kills it, the server kills the kernel's process group; when the process that started
it has gone, it kills the kernel's process group itself. If the server cannot be reached (before any
fork), it becomes the plain kernel of ``KERNEL_ARGV`` (``exec``), exactly what would have run
without a fork server.
"""

import json
import os
import select
import signal
import socket
import struct
import sys

#: signals passed on to the kernel
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def _ask(path: str, argv: list[str]) -> tuple[int, int]:
    """Ask the server at ``path`` for a kernel: its process id and a pidfd of it (opened by the server
    right after the fork, so it is that process even if it has already exited)."""
    request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "relay": os.getpid()}
    body = json.dumps(request).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60.0)
        s.connect(path)
        socket.send_fds(s, [struct.pack("!Q", len(body))], [0, 1, 2])
        s.sendall(body)
        reply, fds, _, _ = socket.recv_fds(s, 4096, 1)
    pid = json.loads(reply or b"{}").get("pid")
    if not isinstance(pid, int) or pid <= 0 or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise OSError(f"the fork server at {path} started no kernel: {reply!r}")
    return pid, fds[0]


def main(args: list[str]) -> None:
    """Relay for one kernel (see the module docstring)."""
    path, sep, argv = args[0], args[1], args[2:]
    if sep != "--" or not argv:
        sys.exit("usage: _relay.py SOCKET -- KERNEL_ARGV...")
    parent = os.pidfd_open(os.getppid())
    try:
        pid, kernel = _ask(path, argv)
    except (OSError, ValueError):
        os.execv(argv[0], argv)  # no server: be the plain kernel

    def forward(signum: int, frame: object) -> None:
        try:  # to the kernel's process group (it leads one), as jupyter_client signals a plain kernel's
            os.killpg(pid, signum)
        except ProcessLookupError:
            pass

    for sig in FORWARDED:
        signal.signal(sig, forward)
    # readable once the kernel has exited, or once the process that started this relay has gone
    # (then the kernel goes too); select is retried after a signal
    ready, _, _ = select.select([kernel, parent], [], [])
    if kernel not in ready:
        forward(signal.SIGKILL, None)
    sys.exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])

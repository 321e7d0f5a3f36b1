"""A report fork server that outlives one ``bioworkbench report`` command (issue 19).

A report that fits a model spends 3-4 s of its kernel importing PyMC, nutpie, ArviZ, Bokeh and the
project before its first cell does any work. ``bioworkbench run`` pays that once per worker
(:mod:`bioworkbench.reports.forkserver`), but every ``bioworkbench report`` command is a new process,
and a fork server started for one report is no faster than a plain kernel (it imports the same
stack, and more of it). So a report command uses a server that an earlier command left running, and
otherwise runs its plain kernel as before and then leaves one for the next command. Measured on the
demo: the forecast report 11.6-11.9 s and the DoE report 10.1 s with a warm server, against 17.8 s and
15.8 s in a plain kernel.

What keeps it safe:

* **never stale.** The server is found by a key over everything that decides what its preloaded
  modules are and did at import: the kernel's command and interpreter, the project's source files
  (path, size, modification time of each), the installed distributions (name and version), and the
  environment variables those modules read (:data:`ENV_PREFIXES`, :data:`ENV_NAMES`). Any change (an
  edited module, an upgraded package, another compile-cache folder) gives another key, so another
  server; the old one is never asked again and exits when idle.
* **private.** Its socket lies in a folder of the user's own (``$XDG_RUNTIME_DIR`` or the temporary
  folder, ``bioworkbench-<uid>``) that must be a real folder owned by the user with no permission
  for group or others; otherwise no server is used or left.
* **short-lived.** A server exits after :data:`IDLE_S` seconds without a kernel (``$BW_REPORT_SERVER_IDLE_S``),
  and when its socket is removed or replaced. A lock file held by the server for its whole life keeps
  a second one from starting for the same key.
* **off** with ``BW_REPORT_SERVER=0`` (as with ``BW_FORK_KERNELS=0``, which turns forking off
  altogether). The kernels it forks are those of :mod:`~bioworkbench.reports.forkserver`: a fresh
  child per report, the same outputs as a plain kernel (``tests/test_forkserver.py``); the manifest
  records ``kernel_forked``.

Why not Dask: a Dask worker runs functions, not Jupyter kernels, and a scheduler left running
between commands is the same daemon with more parts; the fork server already is the warm process.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from bioworkbench.reports.forkserver import _RELAY, _SERVE, can_fork, interpreter

__all__ = ["ENV_NAMES", "ENV_PREFIXES", "IDLE_S", "WarmServer", "find", "fingerprint", "runtime_dir", "start"]

#: seconds a server waits without a kernel before it exits
IDLE_S = 900.0
#: environment variables (by prefix) that the preloaded modules may read at import: part of the key
ENV_PREFIXES = ("BIOWORKBENCH_", "BW_", "NUMBA_", "PYTENSOR", "MPL", "OMP_", "OPENBLAS_", "MKL_", "POLARS_", "PYTHON")
#: bytes of a Unix socket's path, its terminating zero included (Linux)
_SUN_PATH = 108
#: and by name
ENV_NAMES = ("HOME", "PATH", "LANG", "LC_ALL", "TZ", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "JUPYTER_PATH")


def enabled() -> bool:
    """Whether report commands use and leave warm servers (not turned off by ``BW_REPORT_SERVER=0``).

    Returns
    -------
    bool
        False with ``BW_REPORT_SERVER=0``; where kernels cannot be forked at all
        (:func:`~bioworkbench.reports.forkserver.can_fork`) no server is used either.
    """
    return os.environ.get("BW_REPORT_SERVER", "1") != "0"


def runtime_dir() -> Path | None:
    """The user's private folder for the servers' sockets, created when missing.

    Returns
    -------
    pathlib.Path or None
        ``$XDG_RUNTIME_DIR/bioworkbench-<uid>`` (or in the temporary folder), or None when it is not a
        real folder owned by this user with no permission for group or others.
    """
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    folder = Path(base) / f"bioworkbench-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        st = folder.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return folder


def fingerprint(kernel_argv: list[str], env: dict[str, str], package: Path | None = None) -> str:
    """The key of a server: what decides what its preloaded modules are and did at import.

    Parameters
    ----------
    kernel_argv
        The kernel spec's command.
    env
        The environment the server would start with.
    package
        The project's source folder (default: this package's).

    Returns
    -------
    str
        A SHA-256 hex digest.
    """
    digest = hashlib.sha256()
    names = sorted(k for k in env if k.startswith(ENV_PREFIXES) or k in ENV_NAMES)
    digest.update(json.dumps([kernel_argv, sys.executable, sys.version, [(k, env[k]) for k in names]]).encode())
    root = package or Path(__file__).resolve().parents[1]
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".json", ".yaml", ".toml", ".ipynb") and path.is_file():
            st = path.stat()
            digest.update(f"{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    versions = sorted({f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()})
    digest.update("\n".join(versions).encode())
    return digest.hexdigest()


class WarmServer:
    """A running server left by an earlier command: what a relay needs to reach it.

    Parameters
    ----------
    python
        The interpreter of the kernel spec.
    path
        The server's socket.
    """

    def __init__(self, python: str, path: str) -> None:
        self.python = python
        self.path = path

    def launcher(self) -> list[str]:
        """The command jupyter_client runs for a kernel: the relay, then the kernel spec's own command.

        Returns
        -------
        list of str
            ``[python, -I, -S, _relay.py, SOCKET, --]``.
        """
        return [self.python, "-I", "-S", str(_RELAY), self.path, "--"]


def _paths(kernel_argv: list[str], env: dict[str, str]) -> tuple[Path, Path] | None:
    """The socket and the lock file of this key's server; None when turned off, when kernels of this spec
    cannot be forked, or when there is no private folder (or it is too deep for a socket)."""
    if not enabled() or not can_fork(kernel_argv):
        return None
    folder = runtime_dir()
    if folder is None:
        return None
    key = fingerprint(kernel_argv, env)[:24]
    sock = folder / f"fork-{key}.sock"
    if len(os.fsencode(sock)) >= _SUN_PATH:  # a Unix socket's path has at most 107 bytes
        return None
    return sock, folder / f"fork-{key}.lock"


def _listening(path: Path) -> bool:
    """Whether a process of this user listens on the socket ``path`` (a stale file: nobody does)."""
    try:
        st = path.lstat()
    except OSError:
        return False
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.getuid():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def find(kernel_argv: list[str], env: dict[str, str]) -> WarmServer | None:
    """The warm server for this kernel spec and environment, if an earlier command left one.

    Parameters
    ----------
    kernel_argv
        The kernel spec's command.
    env
        The environment the kernel would run with (this process's plus the spec's).

    Returns
    -------
    WarmServer or None
        None when turned off, when kernels of this spec cannot be forked, or when no server of this
        key listens.
    """
    paths = _paths(kernel_argv, env)
    if paths is None or not _listening(paths[0]):
        return None
    return WarmServer(interpreter(kernel_argv)[0], str(paths[0]))


def start(kernel_argv: list[str], env: dict[str, str]) -> int | None:
    """Leave a server for later commands, in the background (returns at once).

    Parameters
    ----------
    kernel_argv
        The kernel spec's command.
    env
        The environment the kernels would run with.

    Returns
    -------
    int or None
        The new server's process id; None when turned off, when one runs or is starting already, or
        when there is no private folder for its socket.
    """
    import fcntl

    paths = _paths(kernel_argv, env)
    if paths is None:
        return None
    sock, lock = paths
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:  # held by a running or starting server: leave it
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return None
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):  # a server killed without cleaning up left it
        sock.unlink()
    python, flags = interpreter(kernel_argv)
    idle = os.environ.get("BW_REPORT_SERVER_IDLE_S", str(IDLE_S))
    process = subprocess.Popen(
        [python, *flags, "-c", _SERVE, str(sock)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**env, "BW_FORK_IDLE_S": idle, "BW_FORK_LOCK": str(lock)},
        cwd=sock.parent,
        start_new_session=True,  # not in the command's process group: Ctrl-C there does not reach it
    )
    _STARTED.append(process)  # kept, so that it is not reaped as "still running" while this process lives
    return process.pid


_STARTED: list[subprocess.Popen] = []

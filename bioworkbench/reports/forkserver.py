"""Report kernels forked from a process that has already imported the report stack (issue 19).

A plain report kernel starts Python and ipykernel, then imports polars, NumPy, SciPy, Bokeh,
nbconvert, bioworkbench and, for a model report, PyMC and PyTensor, before the notebook's own work.
During ``bioworkbench run`` both cores are busy, so this work costs wall time report after report.

A fork server pays it once per report worker. :class:`ForkServer` starts the server with the
kernel's interpreter and environment (``python -c '... serve(sys.argv[1])' SOCKET``); it imports
:data:`PRELOAD` (nothing runs, no kernel starts) and then waits on a Unix socket in a private folder
(``mkdtemp``: mode 0700). Each report's kernel is then started by jupyter_client as usual, but the
command it runs is the relay (:mod:`bioworkbench.reports._relay`): the relay hands its working
folder, environment and standard streams to the server, which forks; the child takes them over,
starts a session of its own and runs ipykernel exactly as ``python -m ipykernel_launcher -f
CONNECTION_FILE`` would. The relay passes on the signals jupyter_client sends (interrupt,
terminate) and exits when the kernel exits; when the relay is killed, the server kills the kernel's
process group (a kernel also exits when the server has gone, as ipykernel's parent poller sees it).

Isolation is that of a fresh process: every kernel is a new child of a server that never ran
notebook code, so nothing one report does (a warning shown once, a global set, a loaded extension)
reaches another. What the server did before forking is importing modules that behave the same
inside and outside IPython; those that do not (:data:`IPYTHON_AWARE`) are left to the kernel. The
server runs no Python thread and never starts an event loop or a ZeroMQ context, so the child
inherits no lock or socket it could not use (its native threads: OpenBLAS re-creates its own after a
fork; polars' allocator threads are idle and its thread pool is not started by an import). NumPy's
global generator is reseeded in each kernel (``random`` reseeds itself); the kernels of one server
share its ``str`` hash seed. What the server imported is frozen out of the garbage collector's
reach (``gc.freeze``, which Python's documentation gives for a process that forks without exec): it
lives as long as the kernel anyway (a kernel that reloads modules keeps the old ones' cycles), and
every full collection in a kernel would otherwise walk the whole preloaded heap (measured: 0.27 s
per collection; a kernel's exit took 0.29 s instead of 0.03 s, two such collections, and a batch
report's cells 0.2 s more). Measured on the 39 reports of ``make demo``: the same outputs as plain
kernels, cell for cell; a batch report 3.4 s instead of 5.5 s (median of one run).

Every report kernel, forked or plain (:func:`prompt_kernel_options`), is waited for by a client that
is ready as soon as the kernel has answered, without jupyter_client's 0.2 s quiet period
(:func:`_prompt_client`).

Why not a library: multiprocessing's forkserver forks functions from a pickled call, not processes
that take over another process's streams and are managed by jupyter_client; jupyter_client's kernel
provisioners would need a provisioner that can watch and signal a process that is not its child,
which the relay gives in 60 lines. Linux only (``os.pidfd_open``); elsewhere reports run in plain
kernels, as they do with ``BW_FORK_KERNELS=0``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import importlib
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

__all__ = [
    "PRELOAD",
    "ForkServer",
    "can_fork",
    "forked_kernel_options",
    "interpreter",
    "prompt_kernel_options",
    "shared_server",
]

#: imported by the server before it forks kernels: what the report notebooks import that behaves the
#: same whether or not it is imported inside IPython (see :data:`IPYTHON_AWARE`). Not ipykernel: its
#: ``IPKernelApp`` reads ``$JPY_PARENT_PID`` (set by jupyter_client for each kernel) at import.
#: ``module:function`` imports the module and calls the function (no arguments): a cache that every
#: report fills on first use and that depends only on the installed packages
PRELOAD: tuple[str, ...] = (
    "numpy",
    "polars",
    "scipy.special",
    "IPython",
    "nbformat",
    # what HoloViews, hvplot and Panel import of other packages (measured in a kernel: 1.56 s -> 0.85 s
    # for `bw.plots.setup()`); matplotlib reads $MPLBACKEND, set as ipykernel sets it (see serve)
    "nbconvert",
    "bleach",
    "mistune",
    "pygments",
    "bs4",
    "tinycss2",
    "pyparsing",
    "param",
    "narwhals.stable.v1",
    "narwhals.stable.v2",
    "PIL.Image",
    "PIL.PngImagePlugin",
    "PIL.ImageSequence",
    "PIL.GimpGradientFile",
    "PIL.GimpPaletteFile",
    "PIL.PaletteFile",
    "tornado.web",
    "tornado.websocket",
    "tornado.wsgi",
    "tqdm",
    "matplotlib",
    "matplotlib.colors",
    "matplotlib.cm",
    "colorcet",
    "bokeh.models",
    "bokeh.plotting",
    "bokeh.io",
    "bokeh.embed",
    "bokeh.embed.notebook",
    "bokeh.resources",
    "bokeh.document",
    "bokeh.server.server",
    "bokeh.application.handlers",
    "bokeh.command.util",
    "bioworkbench",
    "bioworkbench.plots",
    "bioworkbench.review",
    "bioworkbench.monitoring",
    "bioworkbench.kinetics",
    "bioworkbench.campaign",
    "bioworkbench.doe",
    "bioworkbench.stability",
    "bioworkbench.models",
    "bioworkbench.twin",
    # the units registry: pint (with the dask and babel it imports) and its definitions, 0.25 s of
    # every report that reads a campaign (measured in a forked kernel)
    "pint",
    "bioworkbench.units:ureg",
    "bioworkbench.variables:registry",
    # PyTensor's search for a BLAS to link (0.3 s of every model report), its warning silenced as in a fit:
    # a forked kernel never shows it, where a plain one shows it to code that compiles before any fit
    "bioworkbench.models.base:_resolve_blas_flags",
    "pymc",
    "nutpie",
    "arviz",  # with matplotlib's pyplot, whose backend is loaded at the first figure (in the kernel)
)
#: modules that decide at import whether they run inside IPython (HoloViews picks its notebook
#: extension by ``builtins.__IPYTHON__``, pyviz_comms its comms by ``builtins.get_ipython``, hvplot
#: registers a cell hook): imported by the server they would behave as outside a notebook in every
#: kernel (measured: a page without BokehJS; an extra output).
#: The server refuses to start when :data:`PRELOAD` pulled one in. ``tests/test_forkserver.py``
#: checks that a forked kernel's outputs are those of a plain one.
IPYTHON_AWARE: tuple[str, ...] = (
    "holoviews",
    "panel",
    "hvplot",
    "pyviz_comms",
    "tqdm.auto",
    "tqdm.notebook",
    "ipywidgets",
)
#: the line the server prints on its standard output when it accepts requests
READY = "bioworkbench fork server ready"
_RELAY = Path(__file__).with_name("_relay.py")
#: the server's program (``-m`` would import this module twice: as ``__main__`` and from the package)
_SERVE = "import sys; from bioworkbench.reports.forkserver import serve; serve(sys.argv[1])"
_LENGTH = struct.Struct("!Q")
#: kernel commands jupyter_client runs with its own interpreter
_BARE_PYTHON = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
#: a relay's request: at most this many seconds and bytes (its environment is the bulk)
_REQUEST_S = 30.0
_MAX_REQUEST = 16 << 20


# -- the server (in its own process) -------------------------------------------------------------
def _preload(modules: tuple[str, ...]) -> list[str]:
    """Import ``modules`` (and call ``module:function`` entries); those that fail are skipped (a kernel
    imports them itself, and fails there).

    As in a report kernel: jsonschema without its IRI grammar (:mod:`bioworkbench._imports`).
    """
    from bioworkbench._imports import without_iri_grammar

    failed = []
    with warnings.catch_warnings(), without_iri_grammar():  # a kernel that imports them shows its own warnings
        warnings.simplefilter("ignore")
        for name in modules:
            module, _, function = name.partition(":")
            try:
                loaded = importlib.import_module(module)
                if function:
                    getattr(loaded, function)()
            except Exception:  # any failure: leave it to the kernel
                failed.append(name)
    return failed


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """A relay's request: its JSON body and its standard streams (three file descriptors).

    Within :data:`_REQUEST_S` seconds in all and :data:`_MAX_REQUEST` bytes; the descriptors are
    closed when the request is refused.
    """
    deadline = time.monotonic() + _REQUEST_S
    conn.settimeout(_REQUEST_S)
    head, fds, _, _ = socket.recv_fds(conn, _LENGTH.size, 3)
    try:
        if len(head) != _LENGTH.size or len(fds) != 3:
            raise OSError("a request without its length or its three streams")
        (size,) = _LENGTH.unpack(head)
        if size > _MAX_REQUEST:
            raise OSError(f"a request of {size} bytes")
        body = b""
        while len(body) < size:
            conn.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = conn.recv(min(1 << 20, size - len(body)))
            if not chunk:
                raise OSError("a request cut short")
            body += chunk
        return json.loads(body), fds
    except (OSError, ValueError):
        for fd in fds:
            os.close(fd)
        raise


def serve(path: str) -> None:
    """Import :data:`PRELOAD`, then fork a kernel for every request on the Unix socket ``path``.

    Parameters
    ----------
    path
        The socket to listen on (its folder should be private to the user).

    Notes
    -----
    The server watches the relay of every kernel it forked: when a relay has gone (jupyter_client
    killed it), the kernel's process group is killed, as jupyter_client kills a plain kernel's.
    Returns when the process that started the server has gone (checked every second). Ctrl-C in the
    terminal is left to the process that started it. A server that outlives the command that started
    it (:mod:`bioworkbench.reports.warmserver`: ``$BW_FORK_IDLE_S`` and ``$BW_FORK_LOCK`` set) first
    takes the lock file (another server holding it: returns at once), and returns after that many
    seconds without a kernel, or when its socket has been removed or replaced; it removes its socket.
    """
    parent = os.getppid()
    idle = float(os.environ["BW_FORK_IDLE_S"]) if os.environ.get("BW_FORK_IDLE_S") else None
    if idle is not None and not _hold_lock(os.environ["BW_FORK_LOCK"]):
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.path and sys.path[0] == "":  # `python -c`: the working folder would shadow what is preloaded
        del sys.path[0]
    # what ipykernel sets before a kernel runs any code, so that matplotlib imported here reads it too
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    preload = os.environ.get("BW_FORK_PRELOAD")
    failed = _preload(tuple(filter(None, preload.split(","))) if preload is not None else PRELOAD)
    if failed:
        print(f"fork server: not preloaded (the kernels import them): {', '.join(failed)}", file=sys.stderr)
    aware = [m for m in IPYTHON_AWARE if m in sys.modules]
    if aware:
        sys.exit(f"fork server: preloading imported {', '.join(aware)}, which a kernel must import itself")
    # what is preloaded lives as long as a kernel: out of the garbage collector's reach (Python's `gc.freeze`
    # advice for a process that forks without exec), every full collection in a kernel would walk it
    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # exited kernels leave no zombie
    relays: dict[int, tuple[int, int]] = {}  # relay's pidfd -> (kernel's pid, kernel's pidfd)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(16)
        inode = os.stat(path).st_ino
        print(READY, flush=True)
        last = time.monotonic()
        while _serving(parent, idle, last, relays, path, inode):
            ready, _, _ = select.select([listener, *relays], [], [], 1.0)
            for fd in ready:
                if fd is listener:
                    _serve_one(listener, relays)
                else:
                    _relay_gone(fd, relays)
                last = time.monotonic()
        if idle is not None:
            with contextlib.suppress(OSError):
                if os.stat(path).st_ino == inode:
                    os.unlink(path)


#: the lock a server outliving its command holds (closed in every kernel it forks)
_LOCK_FD: list[int] = []


def _hold_lock(lock_path: str) -> bool:
    """Take the lock file ``lock_path`` for the life of this server; False when another process holds it."""
    import fcntl

    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _LOCK_FD.append(fd)
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return True


def _serving(parent: int, idle: float | None, last: float, relays: dict, path: str, inode: int) -> bool:
    """Whether the server goes on: its parent is there; or, for a server outliving its command, its socket
    is still its own and a kernel runs or the last request is less than ``idle`` seconds old."""
    if idle is None:
        return os.getppid() == parent
    try:
        if os.stat(path).st_ino != inode:
            return False
    except OSError:
        return False
    return bool(relays) or time.monotonic() - last < idle


def _serve_one(listener: socket.socket, relays: dict[int, tuple[int, int]]) -> None:
    """Accept one relay's request, fork its kernel, and hand the relay the kernel's pid and pidfd."""
    conn, _ = listener.accept()
    with conn:
        try:
            request, fds = _receive(conn)
        except (OSError, ValueError) as exc:
            print(f"fork server: refused a request: {exc}", file=sys.stderr)
            return
        with warnings.catch_warnings():
            # Python warns of any thread at fork: the server's are OpenBLAS's (re-created in the
            # child) and the idle ones of polars' allocator; its thread pool is not started
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            listener.close()
            conn.close()
            for fd in _LOCK_FD:  # the lock is the server's: a kernel outliving it must not hold it
                os.close(fd)
            for fd in relays:
                os.close(fd)
            for _, kfd in relays.values():
                os.close(kfd)
            _kernel(request, fds)  # never returns
        for fd in fds:
            os.close(fd)
        try:  # opened before the kernel can have exited and been reaped: it is this kernel's
            kernel_fd = os.pidfd_open(pid)
            relay_fd = os.pidfd_open(int(request["relay"]))
        except (OSError, ValueError, KeyError):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            return
        relays[relay_fd] = (pid, kernel_fd)
        with contextlib.suppress(OSError):
            socket.send_fds(conn, [json.dumps({"pid": pid}).encode()], [kernel_fd])


def _relay_gone(relay_fd: int, relays: dict[int, tuple[int, int]]) -> None:
    """A relay has exited: kill its kernel's process group if the kernel still runs."""
    pid, kernel_fd = relays.pop(relay_fd)
    if not select.select([kernel_fd], [], [], 0)[0]:  # the kernel has not exited
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    os.close(kernel_fd)
    os.close(relay_fd)


def _exit_with_relay(relay: int) -> None:
    """Once the process ``relay`` has gone, kill this kernel's process group: the server does it too,
    this covers a server that has gone."""
    with contextlib.suppress(OSError):
        select.select([os.pidfd_open(relay)], [], [])
    os.killpg(os.getpgid(0), signal.SIGKILL)


def _kernel(request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: become the kernel the relay asked for; exits the process."""
    code: Any = 1
    try:
        os.setsid()  # a session of its own, like a kernel jupyter_client starts
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        argv = list(request["argv"])
        # as `python -m ipykernel_launcher` would: the launcher drops sys.path[0] ('' of the server's
        # `python -c`); IPython puts '' back
        if sys.path and sys.path[0] == "":
            del sys.path[0]
        if "numpy.random" in sys.modules:  # NumPy's global generator does not reseed itself at a fork
            sys.modules["numpy.random"].seed()
        threading.Thread(target=_exit_with_relay, args=(int(request["relay"]),), daemon=True).start()
        import importlib.util

        from ipykernel import kernelapp

        i = argv.index("ipykernel_launcher") if "ipykernel_launcher" in argv else len(argv)
        # the launcher's path, as `python -m ipykernel_launcher` has it (pyviz_comms looks at it)
        launcher = importlib.util.find_spec("ipykernel_launcher")
        sys.argv = [launcher.origin if launcher and launcher.origin else kernelapp.__file__, *argv[i + 1 :]]
        kernelapp.launch_new_instance()
        code = 0
    except SystemExit as exc:
        code = exc.code
        if isinstance(code, str):
            print(code, file=sys.stderr)
    except BaseException:  # report it on the kernel's stderr, then exit
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(0 if code is None else code if isinstance(code, int) else 1)


# -- the client (in the process that runs the reports) ------------------------------------------
def _forkable(argv: list[str]) -> bool:
    """Whether a kernel spec's command is ipykernel's launcher, which the server can stand in for."""
    return (
        len(argv) >= 5
        and argv[-4:-1] == ["-m", "ipykernel_launcher", "-f"]
        and all(a.startswith("-X") for a in argv[1:-4])
    )


def can_fork(kernel_argv: list[str]) -> bool:
    """Whether kernels of this spec can be forked here.

    Parameters
    ----------
    kernel_argv
        The kernel spec's command.

    Returns
    -------
    bool
        Linux (``os.pidfd_open``), not turned off by ``BW_FORK_KERNELS=0``, and ipykernel's launcher.
    """
    return hasattr(os, "pidfd_open") and os.environ.get("BW_FORK_KERNELS", "1") != "0" and _forkable(kernel_argv)


def interpreter(kernel_argv: list[str]) -> tuple[str, list[str]]:
    """The interpreter and its ``-X`` options of a forkable kernel spec's command.

    Parameters
    ----------
    kernel_argv
        The kernel spec's command (``[python, ..., "-m", "ipykernel_launcher", ...]``).

    Returns
    -------
    tuple
        The interpreter (this one for a bare ``python``, as jupyter_client runs it) and its options.
    """
    python, *flags = kernel_argv[: kernel_argv.index("-m")]
    return (sys.executable if python in _BARE_PYTHON else python), flags


class ForkServer:
    """A fork server for the kernels of one kernel spec, started with the kernel's interpreter.

    Parameters
    ----------
    kernel_argv
        The kernel spec's command (``[python, ..., "-m", "ipykernel_launcher", "-f",
        "{connection_file}"]``); the server runs with the same interpreter and ``-X`` options.
    env
        The server's environment (default: this process's, plus nothing).
    timeout
        Seconds to wait for the server to have imported :data:`PRELOAD`.

    Raises
    ------
    OSError
        The server exited or did not get ready in time.
    """

    def __init__(self, kernel_argv: list[str], env: dict[str, str] | None = None, timeout: float = 180.0) -> None:
        self.kernel_argv = list(kernel_argv)
        self.python, flags = interpreter(self.kernel_argv)
        self.folder = tempfile.mkdtemp(prefix="bw-forkserver-")
        self.path = os.path.join(self.folder, "kernels.sock")
        try:
            self.process = subprocess.Popen(
                [self.python, *flags, "-c", _SERVE, self.path],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                env=env,
                cwd=self.folder,  # no matplotlibrc or module of some working folder
                text=True,
            )
        except OSError:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while line.strip() != READY:  # lines before it: a module printed while it was imported
            ready, _, _ = select.select([self.process.stdout], [], [], max(deadline - time.monotonic(), 0.0))
            line = self.process.stdout.readline() if ready else ""
            if not line:
                self.close()
                raise OSError(f"the report fork server did not start (exit code {self.process.poll()})")

    @property
    def alive(self) -> bool:
        """Whether the server still runs."""
        return self.process.poll() is None

    def launcher(self) -> list[str]:
        """The command jupyter_client runs for a kernel: the relay, then the kernel spec's own command.

        Returns
        -------
        list of str
            ``[python, -I, -S, _relay.py, SOCKET, --]``, to be followed by the kernel spec's command.
        """
        return [self.python, "-I", "-S", str(_RELAY), self.path, "--"]

    def close(self) -> None:
        """Stop the server and remove its folder (the kernels it started exit with it)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)


_SERVERS: dict[tuple[str, ...], ForkServer] = {}
_SERVERS_LOCK = threading.Lock()


def shared_server(kernel_argv: list[str], env: dict[str, str] | None = None) -> ForkServer | None:
    """This process's fork server for ``kernel_argv``, started on first use and stopped at exit.

    Parameters
    ----------
    kernel_argv
        The kernel spec's command.
    env
        Environment variables the kernel spec adds.

    Returns
    -------
    ForkServer or None
        None where kernels cannot be forked: not Linux (no ``os.pidfd_open``), a kernel that is not
        ipykernel's launcher, ``$BW_FORK_KERNELS`` set to ``0``, or a server that failed to start
        (the reports then run in plain kernels).
    """
    if not can_fork(kernel_argv):
        return None
    key = (*kernel_argv, *sorted(f"{k}={v}" for k, v in (env or {}).items()))
    with _SERVERS_LOCK:  # one server per kernel spec, also for a worker running several reports at once
        server = _SERVERS.pop(key, None)
        if server is not None:
            if server.alive:
                _SERVERS[key] = server
                return server
            server.close()  # it died: remove its folder before starting another
        try:
            server = ForkServer(kernel_argv, env=os.environ | (env or {}))
        except OSError as exc:
            warnings.warn(f"report kernels are started plainly: {exc}", RuntimeWarning, stacklevel=2)
            return None
        if not _SERVERS:
            atexit.register(_close_all)
        _SERVERS[key] = server
        return server


def _close_all() -> None:
    for server in _SERVERS.values():
        server.close()
    _SERVERS.clear()


def forked_kernel_options(server: ForkServer) -> dict[str, Any]:
    """Papermill's options that start the kernel through ``server``'s relay.

    Parameters
    ----------
    server
        A running fork server.

    Returns
    -------
    dict
        ``kernel_manager_class``: a kernel manager whose command is the relay's followed by the
        kernel spec's, and whose clients are those of :func:`prompt_kernel_options`.
    """
    prefix = server.launcher()

    class ForkedKernelManager(_prompt_manager()):
        """A kernel manager whose kernel is forked by the report fork server."""

        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            return [*prefix, *super().format_kernel_cmd(extra_arguments)]

    return {"kernel_manager_class": ForkedKernelManager}


def prompt_kernel_options() -> dict[str, Any]:
    """Papermill's options for a plain kernel (not forked) whose client is ready as soon as it answered.

    Returns
    -------
    dict
        ``kernel_manager_class``: jupyter_client's asynchronous kernel manager whose clients are ready
        0.2 s sooner at every start (see :func:`_prompt_client`).
    """
    return {"kernel_manager_class": _prompt_manager()}


@functools.cache
def _prompt_manager() -> type:
    """jupyter_client's asynchronous kernel manager with the clients of :func:`_prompt_client`."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import Type

    class PromptKernelManager(AsyncKernelManager):
        """jupyter_client's kernel manager, with clients ready as soon as the kernel has answered."""

        client_factory = Type(_prompt_client(), klass="jupyter_client.asynchronous.AsyncKernelClient", config=True)

    return PromptKernelManager


@functools.cache
def _prompt_client() -> type:
    """jupyter_client's asynchronous kernel client, ready as soon as the kernel has answered.

    ``wait_for_ready`` of jupyter_client 8 asks for ``kernel_info`` until a reply and an IOPub message
    have come (IOPub connected), then reads IOPub until it has been quiet for 0.2 s: every kernel start
    waits those 0.2 s (measured: ready 0.41 s after the start request, 0.2 s of it the quiet period).
    This client is ready when a reply has come and IOPub has brought the idle status of one of its
    ``kernel_info`` requests: IOPub is connected, and the kernel has published all it will for that
    request. Messages of the other requests may follow; papermill's client reads only the messages of
    its own requests, as it does after jupyter_client's wait.
    """
    from queue import Empty

    from jupyter_client.asynchronous import AsyncKernelClient

    class PromptKernelClient(AsyncKernelClient):
        async def wait_for_ready(self, timeout: float | None = None) -> None:
            deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
            asked: set[str] = set()
            while True:
                asked.add(self.kernel_info())
                with contextlib.suppress(Empty):  # no reply within 1 s, or IOPub not connected yet: ask again
                    reply = await self.shell_channel.get_msg(timeout=1)
                    if reply["msg_type"] == "kernel_info_reply":
                        await self._idle_of_one(asked, deadline)
                        self._handle_kernel_info_reply(reply)
                        return
                if not await self.is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")

        async def _idle_of_one(self, asked: set[str], deadline: float) -> None:
            """Read IOPub until the idle status of one of the ``asked`` requests (:class:`queue.Empty` when
            IOPub is quiet for 0.2 s, or at ``deadline``)."""
            while True:
                if time.monotonic() > deadline:
                    raise Empty
                msg = await self.iopub_channel.get_msg(timeout=0.2)
                if (
                    msg["msg_type"] == "status"
                    and msg["parent_header"].get("msg_id") in asked
                    and msg["content"].get("execution_state") == "idle"
                ):
                    return

    return PromptKernelClient

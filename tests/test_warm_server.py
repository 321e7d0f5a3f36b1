"""The report server that outlives one ``bioworkbench report`` command (:mod:`bioworkbench.reports.warmserver`).

A command finds a server by a key over the code, the packages and the settings; without one it runs a plain
kernel and leaves a server; the next command's kernel is forked by it. The server's socket lies in a private
folder, it exits when idle, and a stale socket (a server killed) is neither used nor in the way.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from bioworkbench.reports import run_report, warmserver

KERNEL = os.environ.get("BW_KERNEL", "bioworkbench")

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="kernels are forked on Linux only")


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    """Report servers turned on, with their sockets in a folder of this test; every server it started is
    stopped at the end."""
    run = Path(tempfile.mkdtemp(prefix="bw-ws-"))  # short: a socket's path has at most 107 bytes
    monkeypatch.setenv("BW_REPORT_SERVER", "1")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    yield run / f"bioworkbench-{os.getuid()}"
    for process in warmserver._STARTED:
        if process.poll() is None:
            process.terminate()
            process.wait(30)
    shutil.rmtree(run, ignore_errors=True)


def _spec():
    spec = KernelSpecManager().get_kernel_spec(KERNEL)
    return spec.argv, dict(os.environ) | spec.env


def _wait(condition, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _notebook(folder: Path) -> None:
    import nbformat

    folder.mkdir(parents=True, exist_ok=True)
    params = nbformat.v4.new_code_cell("x: int = 1  # a number")
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell("import os\nprint('parent', os.getppid())")
    nb = nbformat.v4.new_notebook(cells=[params, body])
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": KERNEL, "language": "python"}
    nbformat.write(nb, folder / "who.ipynb")


def _parent(run_dir: Path) -> int:
    nb = json.loads((run_dir / "who.ipynb").read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    return int(text.split("parent")[1].split()[0])


def test_the_folder_of_the_sockets_is_private_or_not_used(runtime):
    assert warmserver.runtime_dir() == runtime
    assert runtime.stat().st_mode & 0o777 == 0o700
    runtime.chmod(0o750)  # the group may enter: not private
    assert warmserver.runtime_dir() is None
    argv, env = _spec()
    assert warmserver.start(argv, env) is None and warmserver.find(argv, env) is None
    runtime.chmod(0o700)
    assert warmserver.runtime_dir() == runtime


def test_the_key_follows_the_code_the_packages_and_the_settings(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text("x = 1\n")
    argv, env = ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"], {"HOME": "/h", "TERM": "x"}
    key = warmserver.fingerprint(argv, env, package)
    assert warmserver.fingerprint(argv, env, package) == key
    assert warmserver.fingerprint(argv, env | {"TERM": "y", "SHLVL": "2"}, package) == key  # read by no import
    assert warmserver.fingerprint(argv, env | {"BIOWORKBENCH_CACHE_DIR": "/c"}, package) != key
    assert warmserver.fingerprint(argv, env | {"NUMBA_CACHE_DIR": "/n"}, package) != key
    assert warmserver.fingerprint(["python3", *argv[1:]], env, package) != key
    st = (package / "a.py").stat()
    os.utime(package / "a.py", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # an edited module
    assert warmserver.fingerprint(argv, env, package) != key


def test_a_report_leaves_a_server_that_forks_the_next_reports_kernel(runtime, tmp_path, monkeypatch):
    """The first run has a plain kernel and leaves a server; the second run's kernel is the server's child. A
    server killed without cleaning up leaves a socket nobody listens on: it is not used, and the next start
    replaces it."""
    monkeypatch.setenv("BW_FORK_PRELOAD", "numpy")  # a quick server: what it preloads is not the point here
    _notebook(tmp_path / "notebooks")

    def report():
        return run_report(
            "who", output_dir=tmp_path / "out", notebooks=tmp_path / "notebooks", kernel=KERNEL, fork_kernel="warm"
        )

    first = report()
    assert first.manifest["kernel_forked"] is False and _parent(first.run_dir) == os.getpid()
    argv, env = _spec()
    assert _wait(lambda: warmserver.find(argv, env) is not None, within_s=60), (
        "no server was left",
        [(p.args[-1], p.poll()) for p in warmserver._STARTED],
        warmserver._paths(argv, env),
        sorted(os.listdir(runtime)) if runtime.exists() else None,
    )
    pid = warmserver._STARTED[-1].pid
    assert warmserver.start(argv, env) is None  # one runs: no second one
    second = report()
    assert second.manifest["kernel_forked"] is True and _parent(second.run_dir) == pid

    os.kill(pid, signal.SIGKILL)  # no chance to remove its socket
    warmserver._STARTED[-1].wait(30)
    sockets = list(runtime.glob("fork-*.sock"))
    assert len(sockets) == 1 and warmserver.find(argv, env) is None
    third = report()
    assert third.manifest["kernel_forked"] is False
    assert _wait(lambda: warmserver.find(argv, env) is not None, within_s=60), "the stale socket was in the way"
    assert warmserver._STARTED[-1].pid != pid


def test_an_idle_server_exits_and_removes_its_socket(runtime, monkeypatch):
    monkeypatch.setenv("BW_FORK_PRELOAD", "")
    monkeypatch.setenv("BW_REPORT_SERVER_IDLE_S", "1")
    argv, env = _spec()
    pid = warmserver.start(argv, env)
    assert pid is not None
    assert _wait(lambda: warmserver.find(argv, env) is not None, within_s=60)
    process = warmserver._STARTED[-1]
    assert _wait(lambda: process.poll() is not None, within_s=30), "the idle server did not exit"
    assert list(runtime.glob("fork-*.sock")) == []
    assert warmserver.start(argv, env) is not None  # its lock was released with it


def test_a_socket_path_too_long_for_unix_is_no_server(runtime, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime.parent / ("x" * 90)))
    argv, env = _spec()
    assert warmserver._paths(argv, env) is None and warmserver.start(argv, env) is None


def test_a_socket_that_is_not_a_servers_is_not_used(runtime):
    """A file of another kind at the socket's path, or a socket nobody listens on, is no server."""
    argv, env = _spec()
    path = Path(warmserver._paths(argv, env)[0])
    path.write_text("not a socket")
    assert warmserver.find(argv, env) is None
    path.unlink()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(path))  # bound, never listening
        assert warmserver.find(argv, env) is None


def test_turned_off_it_neither_finds_nor_starts(runtime, monkeypatch):
    argv, env = _spec()
    monkeypatch.setenv("BW_REPORT_SERVER", "0")
    assert warmserver.start(argv, env) is None and warmserver.find(argv, env) is None
    assert not runtime.exists() or list(runtime.glob("fork-*")) == []

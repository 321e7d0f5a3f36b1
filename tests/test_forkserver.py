"""The report fork server (:mod:`bioworkbench.reports.forkserver`) and its relay.

Runs through ``run_report`` in both modes are in ``tests/test_reports.py`` (the kernel and what it
started are gone after the run; the kernel listens on private Unix sockets). Here: the relay passes
an interrupt on, falls back to a plain kernel without a server, and the server survives bad requests.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from bioworkbench.reports.forkserver import ForkServer, _forkable, forked_kernel_options, shared_server

KERNEL = os.environ.get("BW_KERNEL", "bioworkbench")

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="kernels are forked on Linux only")


@pytest.fixture(scope="module")
def server():
    spec = KernelSpecManager().get_kernel_spec(KERNEL)
    srv = ForkServer(spec.argv, env=os.environ | spec.env)
    yield srv
    srv.close()
    assert not Path(srv.folder).exists()


async def _in_kernel(manager_class, code: str, *, interrupt_after_s: float | None = None) -> dict:
    """Run ``code`` in a kernel of ``manager_class``: the execute reply, the stdout text, the kinds of
    output shown (in order) and the pid of the process jupyter_client started."""
    km = manager_class(kernel_name=KERNEL)
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=120)
        msg_id = kc.execute(code)
        if interrupt_after_s is not None:
            await asyncio.sleep(interrupt_after_s)
            await km.interrupt_kernel()
        reply = await kc.get_shell_msg(timeout=120)
        while reply["parent_header"]["msg_id"] != msg_id:  # a late reply to a kernel_info of the start
            reply = await kc.get_shell_msg(timeout=120)
        out, kinds = [], []
        while True:
            msg = await kc.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            if msg["msg_type"] in ("display_data", "execute_result"):
                kinds.append((msg["msg_type"], sorted(msg["content"]["data"])))
            elif msg["msg_type"] in ("stream", "error"):
                kinds.append((msg["msg_type"], msg["content"].get("text") or msg["content"].get("evalue")))
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        return {"reply": reply["content"], "stdout": "".join(out), "outputs": kinds, "relay": km.provisioner.pid}
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


_WHO = (
    "import gc, os, sys; from bioworkbench.units import ureg\n"
    "print(os.getpid(), os.getppid(), 'pymc' in sys.modules, ureg.cache_info().currsize, gc.get_freeze_count() > 0,"
    " os.getcwd())"
)


def test_forked_kernel_is_a_child_of_the_server_with_the_stack_imported(server):
    """... with the units registry built, and what was preloaded out of the garbage collector's walks."""
    res = asyncio.run(_in_kernel(forked_kernel_options(server)["kernel_manager_class"], _WHO))
    pid, ppid, preloaded, units, frozen, cwd = res["stdout"].split()
    assert int(ppid) == server.process.pid and int(pid) != res["relay"]
    assert preloaded == "True" and units == "1" and frozen == "True" and cwd == os.getcwd()


def test_a_preload_entry_that_fails_is_left_to_the_kernel():
    from bioworkbench.reports.forkserver import _preload

    assert _preload(("json", "json:dumps", "bioworkbench.units:no_such_cache", "no_such_module")) == [
        "json:dumps",  # a function that needs arguments
        "bioworkbench.units:no_such_cache",
        "no_such_module",
    ]


def test_an_interrupt_reaches_the_forked_kernel(server):
    """jupyter_client signals the relay's process group; the relay passes SIGINT on to the kernel."""
    cls = forked_kernel_options(server)["kernel_manager_class"]
    res = asyncio.run(_in_kernel(cls, "import time\ntime.sleep(60)", interrupt_after_s=3.0))
    assert res["reply"]["status"] == "error" and res["reply"]["ename"] == "KeyboardInterrupt"


def test_without_a_server_the_relay_becomes_a_plain_kernel(tmp_path):
    """The socket is gone (the server stopped): the relay execs the kernel spec's own command."""
    from types import SimpleNamespace

    relay = Path(__import__("bioworkbench.reports._relay", fromlist=["x"]).__file__)
    gone = SimpleNamespace(launcher=lambda: [sys.executable, "-I", "-S", str(relay), str(tmp_path / "no.sock"), "--"])
    res = asyncio.run(_in_kernel(forked_kernel_options(gone)["kernel_manager_class"], _WHO))
    pid, ppid, preloaded, units, frozen, _ = res["stdout"].split()
    assert int(pid) == res["relay"] and int(ppid) == os.getpid() and preloaded == "False"
    assert units == "0" and frozen == "False"  # a plain kernel builds its registry at its first use


def test_a_plain_report_kernel_is_waited_for_by_the_prompt_client():
    from bioworkbench.reports.forkserver import prompt_kernel_options

    cls = prompt_kernel_options()["kernel_manager_class"]
    assert type(cls(kernel_name=KERNEL).client()).__name__ == "PromptKernelClient"
    res = asyncio.run(_in_kernel(cls, _WHO))
    pid, ppid, preloaded, *_ = res["stdout"].split()
    assert int(pid) == res["relay"] and int(ppid) == os.getpid() and preloaded == "False"


def test_the_server_refuses_a_bad_request_and_serves_the_next(server):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:  # no streams, no length
        s.connect(server.path)
        s.sendall(b"hello")
    res = asyncio.run(_in_kernel(forked_kernel_options(server)["kernel_manager_class"], _WHO))
    assert int(res["stdout"].split()[1]) == server.process.pid and server.alive


def test_only_ipykernels_launcher_is_forked(monkeypatch):
    py = sys.executable
    assert _forkable([py, "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}"])
    assert _forkable([py, "-m", "ipykernel_launcher", "-f", "{connection_file}"])
    assert not _forkable([py, "-m", "some_other_kernel", "-f", "{connection_file}"])
    assert not _forkable([py, "-E", "-m", "ipykernel_launcher", "-f", "{connection_file}"])  # an option it cannot copy
    assert not _forkable(["R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"])
    monkeypatch.setenv("BW_FORK_KERNELS", "0")
    assert shared_server([py, "-m", "ipykernel_launcher", "-f", "{connection_file}"]) is None


_PLOT = (
    "import bioworkbench as bw, polars as pl\n"
    "bw.plots.setup()\n"
    "pl.DataFrame({'x': [1, 2, 3], 'y': [2.0, 1.0, 3.0]}).hvplot.line(x='x', y='y')"
)


def test_a_forked_kernel_shows_what_a_plain_one_shows(server):
    """HoloViews, hvplot, Panel and pyviz_comms decide at import whether they run in IPython: the server
    does not preload them (imported there, the page lost BokehJS, or gained an output). The plots'
    set-up and a plot give the same outputs in a forked kernel as in a plain one."""
    from jupyter_client.manager import AsyncKernelManager

    plain = asyncio.run(_in_kernel(AsyncKernelManager, _PLOT))["outputs"]
    forked = asyncio.run(_in_kernel(forked_kernel_options(server)["kernel_manager_class"], _PLOT))["outputs"]
    assert forked == plain
    assert ("execute_result", ["application/vnd.holoviews_exec.v0+json", "text/html", "text/plain"]) in plain


def test_the_server_refuses_to_preload_what_must_be_imported_in_ipython(monkeypatch):
    spec = KernelSpecManager().get_kernel_spec(KERNEL)
    monkeypatch.setenv("BW_FORK_PRELOAD", "numpy,holoviews")
    with pytest.raises(OSError, match="did not start"):
        ForkServer(spec.argv, env=os.environ | spec.env, timeout=120)


def test_two_forked_kernels_draw_different_unseeded_numbers_and_look_launched(server):
    """NumPy's global generator is reseeded in each kernel (it is not at a fork); sys.argv[0] is the
    launcher's, as under `python -m ipykernel_launcher` (pyviz_comms looks at it)."""
    cls = forked_kernel_options(server)["kernel_manager_class"]
    code = "import sys, numpy; print(numpy.random.random(), sys.argv[0].endswith('ipykernel_launcher.py'))"
    a, b = (asyncio.run(_in_kernel(cls, code))["stdout"].split() for _ in range(2))
    assert a[0] != b[0] and a[1] == b[1] == "True"


def test_the_server_kills_the_kernel_whose_relay_was_killed(server):
    """jupyter_client kills a kernel by killing its relay's process group; the kernel's group goes too."""
    import signal
    import time

    async def run() -> int:
        km = forked_kernel_options(server)["kernel_manager_class"](kernel_name=KERNEL)
        await km.start_kernel()
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=120)
            kc.execute("import os; print(os.getpid())")
            while True:
                msg = await kc.get_iopub_msg(timeout=30)
                if msg["msg_type"] == "stream":
                    kernel = int(msg["content"]["text"])
                    break
            os.kill(km.provisioner.pid, signal.SIGKILL)
            return kernel
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    kernel = asyncio.run(run())
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{kernel}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{kernel}")


def test_a_refused_request_leaves_no_descriptor_open_in_the_server(server):
    fds_before = len(os.listdir(f"/proc/{server.process.pid}/fd"))
    for body in (b"not json", b"x" * 10):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(server.path)
            socket.send_fds(s, [len(body).to_bytes(8, "big")], [0, 1, 2])
            s.sendall(body[:-2] if body.startswith(b"x") else body)  # the second one cut short
    res = asyncio.run(_in_kernel(forked_kernel_options(server)["kernel_manager_class"], _WHO))
    assert int(res["stdout"].split()[1]) == server.process.pid
    import time

    deadline = time.monotonic() + 5  # the kernel's pidfds are closed once the server saw its relay go
    while len(os.listdir(f"/proc/{server.process.pid}/fd")) != fds_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(os.listdir(f"/proc/{server.process.pid}/fd")) == fds_before


def test_the_forked_kernels_client_is_ready_when_iopub_brought_the_idle_of_its_request():
    """A reply, and on IOPub the idle status of one of the client's kernel_info requests: ready, without
    waiting for a quiet IOPub. Asked again when IOPub is not connected yet (its messages lost) or when no
    reply came; a reply that lags one request behind does not keep it waiting; a dead kernel is said."""
    from queue import Empty

    from bioworkbench.reports.forkserver import _prompt_client

    def msg(kind, parent, state=None):
        return {"msg_type": kind, "parent_header": {"msg_id": parent}, "content": {"execution_state": state}}

    class Channel:
        def __init__(self, items):
            self.items = list(items)

        async def get_msg(self, timeout):
            if not self.items or self.items[0] is Empty:
                self.items[:1] = []
                raise Empty
            return self.items.pop(0)

    def client(shell, iopub, alive=True):
        c = _prompt_client()()
        c.asked = []
        c.kernel_info = lambda: c.asked.append(f"k{len(c.asked)}") or c.asked[-1]

        async def is_alive():
            return alive

        c.is_alive = is_alive
        c._shell_channel, c._iopub_channel = Channel(shell), Channel(iopub)
        c._handle_kernel_info_reply = lambda r: c.asked.append(("handled", r["parent_header"]["msg_id"]))
        return c

    reply = {**msg("kernel_info_reply", "k0"), "content": {"protocol_version": "5.3"}}
    # the first request's IOPub messages were lost: asked again; ready at the idle of the second
    iopub = [Empty, msg("status", "k1", "busy"), msg("status", "k1", "idle"), msg("status", "k9", "busy")]
    c = client([reply, {**reply, "parent_header": {"msg_id": "k1"}}], iopub)
    asyncio.run(c.wait_for_ready(timeout=5))
    assert c.asked == ["k0", "k1", ("handled", "k1")]
    assert c.iopub_channel.items == [msg("status", "k9", "busy")]  # what follows is left to the reader
    # no reply within a second: asked again; the first reply then comes, and the second request's idle
    c = client([Empty, reply], [msg("status", "k0", "busy"), msg("status", "k1", "busy"), msg("status", "k1", "idle")])
    asyncio.run(c.wait_for_ready(timeout=5))
    assert c.asked == ["k0", "k1", ("handled", "k0")] and not c.iopub_channel.items
    # the idle status of another request, or a busy one, is not enough: IOPub then quiet; the kernel has died
    c = client([reply], [msg("status", "k9", "idle"), msg("status", "k0", "busy")], alive=False)
    with pytest.raises(RuntimeError, match="Kernel died before replying"):
        asyncio.run(c.wait_for_ready(timeout=5))
    assert c.asked == ["k0"] and not c.iopub_channel.items
    # IOPub busy with other messages: the wait still ends at the deadline
    c = client([reply], [msg("status", "k9", "busy")] * 1000)
    with pytest.raises(RuntimeError, match="didn't respond in 0 seconds"):
        asyncio.run(c.wait_for_ready(timeout=0))
    assert len(c.iopub_channel.items) == 1000

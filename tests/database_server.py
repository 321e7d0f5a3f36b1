"""A throw-away PostgreSQL server for the store tests: initdb into a temporary folder, listening
only on a Unix socket there (no TCP), run as a non-root user when the tests run as root.

The server programs are found in ``$BW_PG_BIN``, on ``PATH``, or under
``/usr/lib/postgresql/*/bin`` (Debian); ``scripts/ensure-postgres.sh`` installs them for
``make test``. Without them :func:`find_pg_bin` returns the reason the tests skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PostgresServer", "find_pg_bin"]


def find_pg_bin() -> tuple[Path | None, str]:
    """The folder holding initdb, pg_ctl and postgres, or ``None`` and why it was not found."""
    candidates = [os.environ.get("BW_PG_BIN", "")]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in filter(None, candidates):
        if all(os.access(Path(folder, p), os.X_OK) for p in ("initdb", "pg_ctl", "postgres")):
            return Path(folder), ""
    return None, (
        "PostgreSQL server programs (initdb, pg_ctl, postgres) not found on PATH, in $BW_PG_BIN or "
        "under /usr/lib/postgresql/*/bin; run scripts/ensure-postgres.sh (make test does)"
    )


def _run_as() -> str | None:
    """The user to run the server as when we are root (initdb refuses root), else None."""
    if os.getuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


class PostgresServer:
    """A PostgreSQL server in a temporary folder, on a Unix socket only; :meth:`stop` removes it."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.user = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="bw-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.socket_dir.mkdir()
        self.log = self.root / "server.log"
        if self.user:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(
            [str(self.bin / "initdb"), "-D", str(self.data), "-U", "bw", "--auth=trust", "-E", "UTF8", "--no-sync"]
        )
        self._run(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
                "-o",
                f"-c listen_addresses='' -k {self.socket_dir} -c fsync=off -c synchronous_commit=off",
                "start",
            ]
        )
        self._count = 0

    def _run(self, cmd: list[str]) -> None:
        if self.user:
            cmd = (
                ["runuser", "-u", self.user, "--", *cmd]
                if shutil.which("runuser")
                else [
                    "su",
                    "-s",
                    "/bin/sh",
                    self.user,
                    "-c",
                    " ".join(f"'{c}'" for c in cmd),
                ]
            )
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.root)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}\n{log}")

    def url(self, dbname: str = "postgres") -> str:
        """The libpq URI of database ``dbname`` over the socket."""
        return f"postgresql:///{dbname}?host={self.socket_dir}&user=bw"

    def new_database(self) -> str:
        """Create a fresh, empty database and return its URI."""
        import psycopg

        self._count += 1
        name = f"bw_test_{self._count}"
        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        try:
            self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

"""A throwaway PostgreSQL server for tests: `initdb` in a temporary folder, `pg_ctl start`, `pg_ctl stop`.

The server listens only on a Unix socket inside its own temporary folder (no TCP port, so two test runs on one
machine cannot collide over a port), trusts every local connection, and trades durability for speed
(`fsync=off`): its data is thrown away with the folder.

`initdb` and `postgres` refuse to run as root, and the tests and CI run as root: then every server command runs as
the unprivileged `postgres` user (created by the OS package) through `runuser`, in a folder under the system
temporary directory that it owns (pytest's own `tmp_path` sits in a folder only root may enter).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "postgres"
INSTALL_HINT = (
    "PostgreSQL's server programs (initdb, pg_ctl) were not found on PATH or in /usr/lib/postgresql/*/bin: "
    "install the OS package `postgresql` (apt-get install postgresql), as .ci/run does"
)
# Settings for a disposable server: nothing here needs to survive a crash.
SERVER_SETTINGS = {
    "listen_addresses": "''",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "40",
}


class PostgresNotInstalled(RuntimeError):
    """The PostgreSQL server binaries are missing; the message names the package to install."""


@dataclass
class PostgresServer:
    folder: Path
    bin_dir: Path
    run_as: str | None

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def socket_dir(self) -> Path:
        return self.folder / "socket"

    @property
    def log_file(self) -> Path:
        return self.folder / "server.log"

    @property
    def dsn(self) -> str:
        """A libpq connection string as the superuser `postgres` to the database `postgres`."""
        return f"host={self.socket_dir} port=5432 user=postgres dbname=postgres"

    def stop(self) -> None:
        """Stops the server at once (`-m immediate`: there is nothing to keep) and removes its folder."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, program: str, *arguments: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / program), *arguments]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}\n"
                f"server log:\n{log[-4000:]}"
            )
        return result


def find_bin_dir() -> Path:
    """The folder holding `initdb`, `pg_ctl` and `postgres`: PATH first, else the newest Debian/Ubuntu install."""
    on_path = shutil.which("initdb")
    if on_path is not None:
        # /usr/local/bin/initdb may be a link into /usr/lib/postgresql/N/bin, where pg_ctl and postgres sit too.
        folder = Path(on_path).resolve().parent
        if (folder / "pg_ctl").exists() and (folder / "postgres").exists():
            return folder
    installed = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not installed:
        raise PostgresNotInstalled(INSTALL_HINT)
    newest = max(installed, key=lambda path: [int(part) for part in re.findall(r"\d+", path)])
    return Path(newest).parent


def start_postgres() -> PostgresServer:
    """Initializes and starts a fresh server; the caller must call `stop()` (also when a test fails)."""
    bin_dir = find_bin_dir()
    run_as = _unprivileged_user()
    folder = Path(tempfile.mkdtemp(prefix="pgtest-"))
    server = PostgresServer(folder=folder, bin_dir=bin_dir, run_as=run_as)
    try:
        server.socket_dir.mkdir()
        if run_as is not None:
            account = pwd.getpwnam(run_as)
            for path in (folder, server.socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)
        server._run(
            "initdb",
            "-D",
            str(server.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = " ".join(f"-c {name}={value}" for name, value in SERVER_SETTINGS.items())
        server._run(
            "pg_ctl",
            "start",
            "-D",
            str(server.data_dir),
            "-l",
            str(server.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            f"-k {server.socket_dir} {options}",
        )
    except BaseException:
        server.stop()
        raise
    return server


def _unprivileged_user() -> str | None:
    """Whom to run the server as: nobody else when not root; the OS package's `postgres` user when root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError as missing:
        raise PostgresNotInstalled(
            f"running as root, the test server must run as the user `{SERVER_USER}`, which does not exist: "
            "install the OS package `postgresql`, which creates it"
        ) from missing
    return SERVER_USER

"""A real PostgreSQL streaming replica (hot standby) of the test cluster, for the router test.

`start_standby()` takes a base backup of the running primary with `pg_basebackup -R` and
starts a second `postgres` on it, on a free port with a temporary data directory, as the
`postgres` OS user when the tests run as root (PostgreSQL refuses to run as root). The
binaries are those of the primary's major version (`/usr/lib/postgresql/<major>/bin`).

Replication connections need a `replication` line in the primary's pg_hba.conf (`all` does
not cover them). When the primary is on this machine and its pg_hba.conf is writable, the
line `host replication all 127.0.0.1/32 trust` is appended once and the configuration
reloaded; otherwise (a PostgreSQL container in CI) the caller gets `ReplicaUnavailable` with
the reason, and the workflow adds the line itself (.github/workflows/ci.yml).
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.biddt.processes import free_port

HBA_LINE = "host replication all 127.0.0.1/32 trust"
HBA_COMMENT = "# streaming replica for the read-replica router test (tests/biddt/replica.py)"
# Hot standby refuses to start unless these are at least the primary's values.
COPIED_SETTINGS = ("max_connections", "max_worker_processes", "max_wal_senders",
                   "max_prepared_transactions", "max_locks_per_transaction")
DEADLINE = 120.0


class ReplicaUnavailable(Exception):
    """A standby can't be started here; the message says why (the test skips with it)."""


@dataclasses.dataclass
class Standby:
    port: int
    data_dir: Path
    bin_dir: Path
    run_as: list[str]
    log_path: Path

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                               dbname=dbname, autocommit=True)

    def query(self, sql: str, *params, dbname: str = "postgres"):
        with self.connect(dbname) as conn:
            return conn.execute(sql, params).fetchone()[0]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_replayed(self, lsn: str) -> None:
        """Until the standby has replayed the primary's WAL up to `lsn`."""
        deadline = time.monotonic() + DEADLINE
        while not self.query("select pg_wal_lsn_diff(pg_last_wal_replay_lsn(), %s) >= 0", lsn):
            if time.monotonic() > deadline:
                raise AssertionError(f"the standby did not replay up to {lsn}:\n{self.log()}")
            time.sleep(0.1)

    def pause_replay(self) -> None:
        self.query("select pg_wal_replay_pause()::text")
        deadline = time.monotonic() + DEADLINE
        while self.query("select pg_get_wal_replay_pause_state()") != "paused":
            if time.monotonic() > deadline:
                raise AssertionError("the standby did not pause its replay")
            time.sleep(0.05)

    def resume_replay(self) -> None:
        self.query("select pg_wal_replay_resume()::text")

    def stop(self) -> None:
        subprocess.run([*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir),
                        "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def _primary(dsn: dict) -> psycopg.Connection:
    return psycopg.connect(autocommit=True, **dsn)


def _allow_replication(primary: psycopg.Connection) -> None:
    rules = primary.execute(
        "select count(*) from pg_hba_file_rules where 'replication' = any(database) "
        "and type like 'host%%' and (address is null or address in ('127.0.0.1', 'all'))"
    ).fetchone()[0]
    if rules:
        return
    hba = Path(primary.execute("show hba_file").fetchone()[0])
    if not (hba.is_file() and os.access(hba, os.W_OK)):
        raise ReplicaUnavailable(
            f"the primary's pg_hba.conf has no `replication` line and is not writable here; "
            f"add `{HBA_LINE}` to it and reload"
        )
    text = hba.read_text()
    if HBA_LINE not in text.splitlines():
        hba.write_text(text.rstrip("\n") + f"\n{HBA_COMMENT}\n{HBA_LINE}\n")
    primary.execute("select pg_reload_conf()")


def _bin_dir(major: int) -> Path:
    candidates = [Path(f"/usr/lib/postgresql/{major}/bin")]
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                             check=False)
        candidates.append(Path(out.stdout.strip()))
    for path in candidates:
        if all((path / name).is_file() for name in ("pg_basebackup", "pg_ctl", "postgres")):
            version = subprocess.run([str(path / "postgres"), "--version"],
                                     capture_output=True, text=True, check=False).stdout
            if f" {major}." in version:
                return path
    raise ReplicaUnavailable(f"no PostgreSQL {major} server binaries (pg_basebackup, pg_ctl, "
                             f"postgres) on this machine")


def _run_as() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise ReplicaUnavailable("running as root and no `postgres` OS user to run "
                                 "PostgreSQL as") from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ReplicaUnavailable("running as root and `runuser` is missing")
    return [runuser, "-u", "postgres", "--"]


def start_standby(*, host: str, port: int, user: str) -> Standby:
    """A hot standby of the primary at host:port, streaming, ready for read-only queries."""
    dsn = {"host": host, "port": port, "user": user, "dbname": "postgres"}
    with _primary(dsn) as primary:
        major = primary.info.server_version // 10000
        bin_dir = _bin_dir(major)
        run_as = _run_as()
        _allow_replication(primary)
        copied = {name: primary.execute(f"show {name}").fetchone()[0]
                  for name in COPIED_SETTINGS}

    root = Path(tempfile.mkdtemp(prefix="biddt-standby-"))
    data_dir, log_path = root / "data", root / "standby.log"
    if run_as:
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
    standby = Standby(port=free_port(), data_dir=data_dir, bin_dir=bin_dir, run_as=run_as,
                      log_path=log_path)
    try:
        backup = subprocess.run(
            [*run_as, str(bin_dir / "pg_basebackup"), "-h", host, "-p", str(port), "-U", user,
             "-D", str(data_dir), "-R", "-X", "stream", "-c", "fast", "--no-sync"],
            capture_output=True, text=True, timeout=600, check=False,
        )
        if backup.returncode != 0:
            raise ReplicaUnavailable(f"pg_basebackup failed: {backup.stderr.strip()}")
        # The primary's own files may be elsewhere (Debian keeps them in /etc) or say
        # something else (a container's): the standby gets its own.
        settings = "\n".join(f"{name} = {value}" for name, value in copied.items())
        config = (
            f"listen_addresses = '127.0.0.1'\nport = {standby.port}\n"
            f"unix_socket_directories = '{data_dir}'\nhot_standby = on\n"
            f"shared_buffers = 32MB\nfsync = off\n{settings}\n"
        )
        _write_as_owner(data_dir / "postgresql.conf", config)
        _write_as_owner(data_dir / "pg_hba.conf",
                        "local all all trust\nhost all all 127.0.0.1/32 trust\n")
        _write_as_owner(data_dir / "pg_ident.conf", "")
        start = subprocess.run(
            [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(log_path),
             "-w", "-t", str(int(DEADLINE)), "start",
             # On the command line: they win over a postgresql.auto.conf copied from the
             # primary (ALTER SYSTEM), which must not give the standby the primary's port.
             "-o", f"-p {standby.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={data_dir}"],
            capture_output=True, text=True, timeout=DEADLINE + 30, check=False,
        )
        if start.returncode != 0:
            raise RuntimeError(f"the standby did not start: {start.stderr}\n{standby.log()}")
        if not standby.query("select pg_is_in_recovery()"):
            raise RuntimeError("the standby is not in recovery (not a replica)")
    except BaseException:
        standby.stop()
        raise
    return standby


def _write_as_owner(path: Path, text: str) -> None:
    """Write a file in the data directory owned by whoever owns the directory."""
    path.write_text(text)
    stat = path.parent.stat()
    os.chown(path, stat.st_uid, stat.st_gid)
    path.chmod(0o600)

"""A private PostgreSQL + PostGIS cluster for development and tests (`make run`, `make test`).

PostgreSQL refuses to run as root, so when started by root the cluster runs as the `postgres`
system user; otherwise it runs as the calling user. The superuser of the cluster is always
called `postgres`, and it trusts local connections: this is a developer's cluster, never a
production one.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

CLUSTER_USER = "postgres"


class DevDatabaseError(RuntimeError):
    """The private cluster could not be found, created, started or stopped."""


def find_bindir() -> Path:
    """Return the bin directory of the newest PostgreSQL on this machine that has PostGIS."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        reverse=True,
    )
    for initdb in candidates:
        version = initdb.parent.parent.name
        if Path(f"/usr/share/postgresql/{version}/extension/postgis.control").exists():
            return initdb.parent
    raise DevDatabaseError(
        "no PostgreSQL with PostGIS found under /usr/lib/postgresql; "
        "install it with: apt-get install postgresql-15-postgis-3"
    )


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _is_root() -> bool:
    return os.geteuid() == 0


def _run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    if _is_root():
        cmd = ["runuser", "-u", CLUSTER_USER, "--", *cmd]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
    if check and result.returncode != 0:
        raise DevDatabaseError(f"{' '.join(cmd)} failed:\n{result.stdout}{result.stderr}")
    return result


def _reachable_by_cluster_user(path: Path) -> bool:
    return (
        subprocess.run(
            ["runuser", "-u", CLUSTER_USER, "--", "test", "-x", str(path)], capture_output=True
        ).returncode
        == 0
    )


def resolve_data_dir(data_dir: Path) -> Path:
    """Return where the cluster's files really live.

    As root, a checkout below a private home directory is out of the `postgres` user's reach;
    the cluster then lives under /var/tmp and `data_dir` becomes a link to it.
    """
    data_dir = data_dir.absolute()
    if data_dir.is_symlink():
        return data_dir.resolve()
    if not _is_root():
        return data_dir
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if _reachable_by_cluster_user(data_dir.parent):
        return data_dir
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    real = Path("/var/tmp/est-lagesbild-pg") / digest
    real.mkdir(parents=True, exist_ok=True)
    os.chmod(real.parent, 0o755)
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.symlink_to(real, target_is_directory=True)
    return real


def url_for(port: int, database: str = "est") -> str:
    """Return the superuser URL of a private cluster listening on port."""
    return f"postgresql://{CLUSTER_USER}@127.0.0.1:{port}/{database}"


def start(data_dir: Path, port: int, database: str = "est") -> str:
    """Create the cluster in data_dir when missing, start it when stopped, and return its URL."""
    bindir = find_bindir()
    real = resolve_data_dir(data_dir)
    real.mkdir(parents=True, exist_ok=True)
    if _is_root():
        shutil.chown(real, CLUSTER_USER)
    os.chmod(real, 0o700)
    if not (real / "PG_VERSION").exists():
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(real),
                "--auth=trust",
                f"--username={CLUSTER_USER}",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        )
    if _run([str(bindir / "pg_ctl"), "-D", str(real), "status"], check=False).returncode != 0:
        options = f"-p {port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=on"
        _run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(real),
                "-o",
                options,
                "-l",
                str(real / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
    return url_for(_running_port(real) or port, database)


def _running_port(real: Path) -> int | None:
    pid_file = real / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        return None
    return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None


def stop(data_dir: Path) -> None:
    """Stop the cluster in data_dir if it runs (fast shutdown: committed data is kept)."""
    if not data_dir.exists():
        return
    real = data_dir.resolve()
    if not (real / "postmaster.pid").exists():
        return
    _run([str(find_bindir() / "pg_ctl"), "-D", str(real), "-m", "fast", "-w", "stop"], check=False)


def destroy(data_dir: Path) -> None:
    """Stop the cluster and delete its files."""
    stop(data_dir)
    if data_dir.is_symlink():
        shutil.rmtree(data_dir.resolve(), ignore_errors=True)
        data_dir.unlink()
    else:
        shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Command line: python -m app.devdb start|stop|destroy DIR [--port N]."""
    parser = argparse.ArgumentParser(prog="python -m app.devdb", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "destroy"])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--port", type=int, default=54329)
    parser.add_argument("--database", default="est")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            print(start(args.data_dir, args.port, args.database))
        elif args.command == "stop":
            stop(args.data_dir)
        else:
            destroy(args.data_dir)
    except DevDatabaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

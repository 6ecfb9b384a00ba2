"""Start and stop single Ray nodes on this machine (``ray start --block``), for a local multi-node cluster.

The two-node cluster test and ``benchmarks/bench_grid.py`` both start a head and a worker
node; this is their one implementation. Nodes are stopped by the PIDs of the session each
was started in (``ray stop`` would stop every Ray on the machine).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from fer_keras.errors import FerError, problem

START_TIMEOUT_S = 240


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _session_pids(leader: int) -> list[int]:
    """Every live process of the session ``leader`` started (Ray's daemons included), by /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[3]) == leader:  # field 6 of stat: the session id
            pids.append(int(entry.name))
    return pids


def stop_node(proc: subprocess.Popen) -> None:
    """SIGTERM the node's processes by PID, then SIGKILL what is left after a grace period."""
    for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        for pid in _session_pids(proc.pid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + grace
        while time.time() < deadline and _session_pids(proc.pid):
            proc.poll()
            time.sleep(0.5)


def _raylet_died(args: list[str]) -> bool:
    """Whether the node's raylet gave up (on a busy machine its agents can miss Ray's fixed ~15 s startup wait)."""
    log = Path(args[args.index("--temp-dir") + 1]) / "session_latest" / "logs" / "raylet.out"
    try:
        return "Check failed" in log.read_text(errors="replace")
    except OSError:
        return False


def start_node(
    args: list[str], log: Path, env: dict[str, str], attempts: int = 3, timeout_s: float = START_TIMEOUT_S
) -> subprocess.Popen:
    """``ray start --block ARGS`` in its own session, returned once it says it started.

    Retried ``attempts`` times (a busy machine can miss Ray's startup timeouts); earlier
    attempts' logs are kept as ``<log>.<n>.log``. ``args`` must contain ``--temp-dir DIR``.

    Raises:
        FerError: no attempt started, with the end of the last log.
    """
    ray = Path(sys.executable).with_name("ray")
    for attempt in range(attempts):
        with open(log, "wb") as out:
            proc = subprocess.Popen([str(ray), "start", "--block", *args], stdout=out, stderr=subprocess.STDOUT,
                                    env=env, start_new_session=True)  # fmt: skip
        deadline = time.time() + timeout_s
        while time.time() < deadline and proc.poll() is None:
            text = log.read_text(errors="replace")
            if "Ray runtime started" in text:
                return proc
            if "timed out during startup" in text or _raylet_died(args):
                break
            time.sleep(1)
        stop_node(proc)
        if attempt < attempts - 1:
            log.rename(log.with_suffix(f".{attempt}.log"))
    tail = log.read_text(errors="replace")[-3000:]
    raise FerError(problem(f"ray start {' '.join(args[:2])}", f"did not start:\n{tail}"))

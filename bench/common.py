"""Helpers shared by every benchmark and evaluation: the machine header and result-file writing."""

from __future__ import annotations

import os
import pkgutil
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "REPO",
    "RESULTS",
    "git_commit",
    "machine_header",
    "machine_line",
    "peak_rss_mb",
    "reset_peak_rss",
    "rss_mb",
    "run_all",
    "start_server",
    "write_result",
]

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             check=False)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def machine_line() -> str:
    """One line naming the machine, Python, the commit and the time (UTC)."""
    return (f"{platform.machine()}, {os.cpu_count()} cores ({_cpu_model()}), Python {platform.python_version()}, "
            f"commit {git_commit()}, {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}")


def machine_header(command: str) -> str:
    """Markdown lines naming the machine, the date, the commit and the command."""
    return "\n".join([
        f"- machine: `{platform.machine()}`, {os.cpu_count()} CPUs (nproc), {_cpu_model()}",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, commit {git_commit()}, "
        f"Python {platform.python_version()}",
        f"- command: `{command}`",
    ])


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size in MB: of this process since the last :func:`reset_peak_rss` (Linux
    ``VmHWM``), or of its finished children (``children=True``)."""
    if not children:
        value = _status_mb("VmHWM")
        if value is not None:
            return value
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024.0


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def rss_mb() -> float:
    """Current resident set size, MB (Linux), else the peak so far."""
    value = _status_mb("VmRSS")
    return value if value is not None else peak_rss_mb()


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux >= 4.0: ``clear_refs`` value 5).

    Afterwards :func:`peak_rss_mb` reads the peak since the reset. Returns False where unsupported
    (then the peak is the whole process's).
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def write_result(name: str, title: str, command: str, body: str) -> Path:
    """Write ``docs/results/<name>.md`` with the machine header above ``body``; return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(f"# {title}\n\n{machine_header(command)}\n\n{body.strip()}\n")
    return path


def run_all(package: str, suffix: str, args: list[str]) -> int:
    """Run every module ``<package>.<name><suffix>`` in its own process (``make eval`` / ``make bench``);
    returns 1 if any failed."""
    names = sorted(m.name for m in pkgutil.iter_modules([str(REPO / package)]) if m.name.endswith(suffix))
    failed = []
    for name in names:
        started = time.perf_counter()
        print(f"== {package}.{name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"{package}.{name}", *args], cwd=REPO).returncode != 0:
            failed.append(name)
        print(f"== {package}.{name}: {time.perf_counter() - started:.0f} s", flush=True)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


def start_server(url: str, port: int, log: Path, env: dict[str, str], timeout: float = 300.0
                 ) -> subprocess.Popen[bytes]:
    """``truescore serve --db url --port port`` in its own process (output to ``log``); returns once
    ``/health`` answers 200, raises RuntimeError if the server exits or does not answer in time."""
    import httpx

    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "truescore.cli", "serve", "--db", url, "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the server did not start: {log.read_text()}")
        time.sleep(0.1)

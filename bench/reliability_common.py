"""Machine description and process helpers shared by the reliability benchmarks and evaluations."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["git_commit", "machine_header", "peak_rss_mb", "reset_peak_rss", "rss_mb"]

REPO = Path(__file__).resolve().parents[1]


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


def machine_header(command: str) -> str:
    """Markdown lines naming the machine, the date, the commit and the command."""
    return "\n".join([
        f"- machine: `{platform.machine()}`, {os.cpu_count()} CPUs (nproc), {_cpu_model()}",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, commit {git_commit()}, "
        f"Python {platform.python_version()}",
        f"- command: `{command}`",
    ])


def peak_rss_mb() -> float:
    """Peak resident set size, MB: since the last :func:`reset_peak_rss` (Linux ``VmHWM``), else since start."""
    value = _status_mb("VmHWM")
    return value if value is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


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

    Afterwards :func:`peak_rss_mb` reads ``VmHWM``, the peak since the reset. Returns False where
    unsupported (then the peak is the whole process's).
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True

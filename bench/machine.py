"""What the numbers were measured on: they mean little without the cores, the CPU, the Python and the
versions of the libraries on the request path."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("django", "djangorestframework", "uvicorn", "uvloop", "httptools", "httpx", "orjson")


def _first_value(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        pass
    return "unknown"


def _command(*args: str) -> str:
    try:
        result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (result.stdout or result.stderr).strip()


def describe_machine() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    commit = _command("git", "rev-parse", "--short", "HEAD")
    dirty = bool(_command("git", "status", "--porcelain", "--untracked-files=no"))
    wrk_version = _command("wrk", "--version")
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _first_value("/proc/cpuinfo", "model name"),
        "memory": _first_value("/proc/meminfo", "MemTotal"),
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "platform": platform.platform(),
        "packages": versions,
        "wrk": wrk_version.splitlines()[0] if wrk_version else "not installed",
        "commit": f"{commit}{' (with uncommitted changes)' if dirty else ''}",
    }

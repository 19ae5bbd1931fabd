"""Optional sampling profile of the gateway during its measured runs (`--profile`), with py-spy
(`pip install py-spy`; needs ptrace rights, as root here), summarised as the functions that cost the most.

py-spy pauses the gateway for each sample (sampling without pausing tears a third of the stacks) and takes
CPU on the other core, so a profiled run's throughput is a little lower than an unprofiled one's.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

RATE = 250


def executable() -> str | None:
    """py-spy from the virtualenv the benchmark runs in, else from PATH."""
    return shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


async def record(pid: int, seconds: int, output: Path) -> None:
    """Sample `pid` for `seconds` into a collapsed-stacks file (one `frame;frame;... count` line per stack)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        executable() or "py-spy", "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(RATE),
        "--nolineno", "--format", "raw", "--output", str(output),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), timeout=seconds + 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError("py-spy did not finish in time") from None
    if process.returncode != 0:
        raise RuntimeError(f"py-spy failed: {err.decode(errors='replace').strip()}")


def summarize(collapsed: Path, top: int = 25) -> dict:
    """Share of busy samples per function: `self` where the function itself was running, `total` where it
    was anywhere on the stack (counted once per sample). Lists the top functions by each."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        n = int(count)
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            anywhere[frame] += n

    def rows(ranking: Counter[str]) -> list[dict]:
        return [{"function": name, "self": round(100 * own[name] / samples, 1),
                 "total": round(100 * anywhere[name] / samples, 1)} for name, _ in ranking.most_common(top)]

    return {"samples": samples, "by_self": rows(own) if samples else [], "by_total": rows(anywhere) if samples else []}

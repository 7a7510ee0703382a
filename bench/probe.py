"""Run a command as a child process and report its wall time and peak resident memory as one JSON line.

Running each stage under its own probe keeps the peak RSS of one stage from hiding another's
(`RUSAGE_CHILDREN` is a maximum over all children a process has waited for).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def main() -> int:
    command = sys.argv[1:]
    started = time.perf_counter()
    completed = subprocess.run(command, check=False)
    wall = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(json.dumps({"returncode": completed.returncode, "wall_seconds": wall, "peak_rss_mb": peak_kib / 1024}))
    return completed.returncode


if __name__ == "__main__":
    sys.exit(main())

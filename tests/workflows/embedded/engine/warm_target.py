"""Target functions for the warm-worker tests (imported inside the pool's worker processes)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

IMPORTS = 0
CACHE: dict[str, int] = {}


def init() -> None:
    """Initializer: runs once per worker; records the worker's PID (stands in for importing TensorFlow)."""
    global IMPORTS
    IMPORTS += 1
    log = Path(os.environ["WARM_TEST_DIR"]) / "init.log"
    with open(log, "a") as fh:
        fh.write(f"{os.getpid()}\n")


def run(argv: list[str]) -> int:
    cmd, rest = argv[0], argv[1:]
    if cmd == "cache":
        CACHE["calls"] = CACHE.get("calls", 0) + 1
        print(f"pid={os.getpid()} calls={CACHE['calls']} imports={IMPORTS}")
        return 0
    if cmd == "env":
        print(os.environ.get(rest[0], "<unset>"))
        os.environ["LEAKED_BY_STEP"] = "yes"
        return 0
    if cmd == "sleep":
        time.sleep(float(rest[0]))
        return 0
    if cmd == "crash":
        os._exit(17)
    if cmd == "fail":
        print("failing on purpose", file=sys.stderr)
        return 3
    if cmd == "raise":
        raise RuntimeError("boom from the step")
    if cmd == "io":
        print("python stdout")
        print("python stderr", file=sys.stderr)
        os.write(1, b"fd1 line\n")
        os.write(2, b"fd2 line\n")
        Path("in-cwd.txt").write_text(os.getcwd())
        Path(rest[0]).parent.mkdir(parents=True, exist_ok=True)
        Path(rest[0]).write_text("written")
        return 0
    if cmd == "exit":
        sys.exit(int(rest[0]))
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2

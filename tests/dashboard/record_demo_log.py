"""Re-record ``data/demo.ndjson``, the golden event log of `longshot demo` the dashboard tests read.

Run it after a change to the demo or to the events: ``.venv/bin/python tests/dashboard/record_demo_log.py``.
Then check the expectations in ``test_board.py`` still describe the run (they name its
tasks and counts, not its timing).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="longshot-record-") as tmp:
        done = subprocess.run([sys.executable, "-m", "longshot", "demo", "--json", "--keep", tmp], cwd=tmp,
                              stdout=subprocess.DEVNULL)
        if done.returncode != 0:
            raise SystemExit(f"the demo failed (exit {done.returncode}); nothing recorded")
        log = sorted(Path(tmp, "logs").glob("run-*.ndjson"))[-1]
        shutil.copyfile(log, HERE / "data" / "demo.ndjson")
        print(f"recorded {log.name} -> {HERE / 'data' / 'demo.ndjson'}")


if __name__ == "__main__":
    main()

"""Start-up cost of the CLI: ``tuitune --help`` against a bare ``python -c pass`` baseline,
run in the same script so the ratio is machine-independent. Target: --help < 0.5 s here."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def _time(cmd: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main(runs: int = 7) -> None:
    base = _time([sys.executable, "-c", "pass"], runs)
    rows = [
        ("python -c pass (baseline)", base),
        ("tuitune --help", _time([sys.executable, "-m", "tuitune", "--help"], runs)),
        ("tuitune locate", _time([sys.executable, "-m", "tuitune", "locate"], runs)),
        (
            "import tuitune.tui.app",
            _time([sys.executable, "-c", "import tuitune.tui.app"], runs),
        ),
    ]
    print(f"{'command':<32} {'median s':>9} {'x baseline':>11}")
    for name, t in rows:
        print(f"{name:<32} {t:>9.3f} {t / base:>11.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)

"""Speed of the pose-code grid and the code inspector (prints figures, asserts nothing).

    python benchmarks/timeline_speed.py [--repeats 50]

Times PoseCodeGrid.set_codes (49 and 196 token steps), alone and with a repaint (widget grab),
set_frame alone and with a repaint, in both grid layouts ("codes": 392 rows, one per code, the
default; "groups": 70 rows, one per group), set_layout back and forth, and CodeInspector.set_frame
on a step change. Uses the offscreen Qt platform when there is no display. Figures: median and
90th percentile in milliseconds.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402

from core import posecodes as pc  # noqa: E402


def random_ids(steps: int, rng) -> np.ndarray:
    cats = rng.integers(0, 1 << 30, size=(steps, pc.N_GROUPS)) % np.array([g.n_codes for g in pc.GROUPS])
    return pc.GROUP_START[:-1] + cats


def timed(fn, repeats: int) -> str:
    """Median / p90 time, and the change of None's refcount per call (PySide6 6.12 on
    CPython 3.11 drops a reference to None on each void call: the process aborts at zero)."""
    fn()                                            # warm-up
    t, r0 = [], sys.getrefcount(None)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(i)
        t.append((time.perf_counter() - t0) * 1e3)
    leak = (sys.getrefcount(None) - r0) / repeats
    return f"median {np.median(t):7.3f} ms   p90 {np.percentile(t, 90):7.3f} ms   None refs/call {leak:+.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=50)
    n = ap.parse_args().repeats
    app = QApplication.instance() or QApplication([])
    from pgr2m_studio.inspector import CodeInspector
    from pgr2m_studio.timeline import PoseCodeGrid

    rng = np.random.default_rng(0)
    ins = CodeInspector()
    print(f"Qt platform: {app.platformName()}, repeats {n}")
    for layout in ("codes", "groups"):
        grid = PoseCodeGrid(layout=layout)
        grid.resize(1100, 300)
        grid.show()
        app.processEvents()
        print(f"-- layout {layout!r} ({grid.n_rows} rows)")
        for steps in (49, 196):
            sets = [random_ids(steps, rng) for _ in range(4)]
            grid.set_codes(sets[0])
            print(f"{f'set_codes ({steps} steps)':34s}", timed(lambda i=0: grid.set_codes(sets[i % 4]), n))
            print(f"{f'set_codes + repaint ({steps} steps)':34s}",
                  timed(lambda i=0: (grid.set_codes(sets[i % 4]), grid.grab()), n))
        frames = grid.n_steps * 4
        print(f"{'set_frame':34s}", timed(lambda i=0: grid.set_frame(i % frames), n * 4))
        print(f"{'set_frame + repaint':34s}",
              timed(lambda i=0: (grid.set_frame(i * 4 % frames), grid.grab()), n))
    other = {"codes": "groups", "groups": "codes"}
    print("--")
    print(f"{'set_layout (196 steps, toggled)':34s}",
          timed(lambda i=0: grid.set_layout(other[grid.layout_name]), n))
    ins.set_codes(grid.codes)
    ins.show()
    print(f"{'inspector.set_frame (new step)':34s}", timed(lambda i=0: ins.set_frame(i * 4 % frames), n))
    print(f"None refcount left: {sys.getrefcount(None)}")


if __name__ == "__main__":
    main()

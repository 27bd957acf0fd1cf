"""Speed of the 3D viewport per frame: set_frame (vertex upload) and a full canvas render.

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/viewport_speed.py [--size 1280x720]

Plays a synthetic 196-frame walk (with a ghost) and prints the median and 90th percentile of
set_frame alone, canvas.render() alone (offscreen draw + read-back) and both together.
Prints figures, never asserts.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("QT_QPA_PLATFORM", "xcb")

from motion_factory import synth_motion  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from pgr2m_studio.viewport import Viewport  # noqa: E402


def stats(ms: list[float]) -> str:
    return f"median {np.median(ms):7.2f} ms   p90 {np.percentile(ms, 90):7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x720", help="canvas size WxH")
    parser.add_argument("--frames", type=int, default=196)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))

    app = QApplication.instance() or QApplication([sys.argv[0]])
    vp = Viewport()
    vp.resize(w, h)
    vp.show()
    app.processEvents()
    joints = synth_motion(args.frames, seed=0, speed=0.03).astype(np.float32)
    vp.set_motion(joints, 20.0)
    vp.set_ghost(synth_motion(args.frames, seed=1, speed=0.03))
    vp.set_follow(True)

    upload, render, both = [], [], []
    for k in range(args.warmup + args.frames):
        t0 = time.perf_counter()
        vp.set_frame(k % args.frames)
        t1 = time.perf_counter()
        vp.canvas.render(alpha=False)
        t2 = time.perf_counter()
        if k >= args.warmup:
            upload.append((t1 - t0) * 1e3)
            render.append((t2 - t1) * 1e3)
            both.append((t2 - t0) * 1e3)

    from vispy.gloo import gl

    vp.canvas.set_current()
    renderer = gl.glGetParameter(gl.GL_RENDERER)
    print(f"viewport {w}x{h}, {args.frames} frames, ghost on, follow on, "
          f"GL renderer: {renderer}")
    print(f"  set_frame            {stats(upload)}")
    print(f"  canvas.render        {stats(render)}")
    print(f"  set_frame + render   {stats(both)}   (~{1e3 / np.median(both):.0f} frames/s)")
    vp.close()


if __name__ == "__main__":
    main()

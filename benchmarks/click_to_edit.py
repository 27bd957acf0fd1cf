"""Click a pose-code cell -> the edited motion on screen, in the real main window.

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/click_to_edit.py [--clicks 20]

Generates one 196-frame motion with the built-in model, then emits the grid's click signal
for cells of different groups and steps (as a mouse click does) and times until the document
holds the edited motion and the viewport has drawn it. Guided edits (the default) and refine-only
edits (Preferences: guidance off) are timed apart. Before each click the job thread is let
finish what it does after showing a motion (preparing the next edit, Pipeline.prepare_edit), as
it has while a user moves the mouse to the next cell; --back-to-back clicks at once instead.
Prints figures, never asserts.
"""

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")      # as main.py does for the app

import numpy as np  # noqa: E402
from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings, QStandardPaths, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def wait(app, cond, timeout=60.0, signals=()):
    """Run the real event loop (idle in C++, as in the app) until cond() holds, checked when one
    of ``signals`` fires (and every 50 ms): a Python polling loop would hold the GIL against the
    job thread and slow what it measures."""
    loop = QEventLoop()
    poke = lambda *_: loop.quit() if cond() else None       # noqa: E731
    for sig in signals:
        sig.connect(poke)
    check = QTimer(interval=50, timeout=poke)
    check.start()
    QTimer.singleShot(int(timeout * 1000), loop.quit)
    if not cond():
        loop.exec()
    check.stop()
    for sig in signals:
        sig.disconnect(poke)
    if not cond():
        raise TimeoutError("timed out")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clicks", type=int, default=20, help="clicks per mode")
    ap.add_argument("--back-to-back", action="store_true",
                    help="click as soon as the edit is drawn, not after the job thread is idle")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    QStandardPaths.setTestModeEnabled(True)          # leave the user's settings alone
    QCoreApplication.setOrganizationName("PGR2M-bench")
    app = QApplication.instance() or QApplication([sys.argv[0]])
    QSettings().clear()
    from core import posecodes as pc
    from pgr2m_studio.main_window import MainWindow

    win = MainWindow()
    win.resize(1400, 900)
    win.show()
    wait(app, lambda: win.pipeline is not None, 120)
    win.panel.set_settings("a person walks forward and waves", 196, 1, 3)
    win.panel.generate_button.click()
    wait(app, lambda: win.document.motion is not None and win._generate_job is None)
    rng = np.random.default_rng(0)
    inside: list[float] = []                # the pipeline call itself, in the job thread
    real_edit = type(win.pipeline).edit

    def timed_edit(self, *a, **k):
        t = time.perf_counter()
        try:
            return real_edit(self, *a, **k)
        finally:
            inside.append(time.perf_counter() - t)

    type(win.pipeline).edit = timed_edit
    print(f"built-in model, {win.document.motion.n_frames} frames, {args.threads} threads"
          + ("; back-to-back clicks" if args.back_to_back else "; each click once the job thread is idle"))
    for guided in (True, False):
        win.prefs = replace(win.prefs, guided_edits=guided)
        times = []
        inside.clear()
        for _ in range(args.clicks):
            if not args.back_to_back:
                wait(app, lambda: not win.runner.busy, signals=(win.runner.idle,))
            m = win.document.motion
            g = pc.GROUPS[int(rng.integers(pc.N_GROUPS))]
            step = int(rng.integers(m.n_steps))
            code = next(c for c in g.code_ids if c != m.code_ids()[step, g.index])
            before = win.undo_stack.count()
            t0 = time.perf_counter()
            win.grid.code_clicked.emit(code, step)
            wait(app, lambda: win.undo_stack.count() > before and win._edit_job is None,
                 signals=(win.undo_stack.indexChanged, win.runner.idle))
            win.viewport.canvas.render()            # the frame the user sees next
            times.append(time.perf_counter() - t0)
        ms = 1000 * np.array(times)
        print(f"  {'guided edit' if guided else 'refine only'}: click -> edited motion drawn "
              f"median {np.median(ms):6.1f} ms, p90 {np.percentile(ms, 90):6.1f} ms ({args.clicks} clicks); "
              f"of which Pipeline.edit in the job thread: median {1000 * np.median(inside):6.1f} ms")
    win.document.mark_saved(Path(QStandardPaths.writableLocation(QStandardPaths.TempLocation)) / "x.pgr2m")
    win.close()


if __name__ == "__main__":
    main()

"""The main window while a model job or a training run is in flight: clicking, editing, undo,
saving, exporting, switching documents or models and quitting never corrupt the document and
never hang the window.

A job is held in flight by a Gate around a Pipeline method (it waits on the worker thread until
the test releases it), so each race is played out in a fixed order. The rules checked here:
- a result applies only to the document and motion it was computed from; a stale one (the
  document was replaced, the motion undone or another sample picked) is dropped with a
  status-bar message, together with the edits queued behind it;
- edits are refused while a generation runs (it is about to replace the motion);
- saving and exporting write the document as it is at that moment, never half a result;
- closing the window waits a bounded time, drops every result still to come, starts no queued
  job and stops a training run; nothing breaks when a job ends after the window is gone.
"""

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import GUI

pytestmark = GUI

PROJECT = "PGR²M projects (*.pgr2m)"


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory):
    from model_factory import make_model_folder

    return make_model_folder(tmp_path_factory.mktemp("other_model"), seed=1)


@pytest.fixture
def thread_errors(monkeypatch):
    """Exceptions that escaped any thread (the job thread included)."""
    errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    return errors


@pytest.fixture
def boxes(monkeypatch):
    """Message boxes: 'Unsaved changes?' answers Discard; error boxes are recorded, not shown."""
    from PySide6.QtWidgets import QMessageBox

    shown = {"question": [], "error": [], "warning": []}

    def question(parent, title, text, *a, **k):
        shown["question"].append(text)
        return QMessageBox.Discard

    monkeypatch.setattr(QMessageBox, "question", question)
    monkeypatch.setattr(QMessageBox, "open", lambda self, *a: shown["error"].append(self.text()))
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: shown["warning"].append(text))
    return shown


@pytest.fixture
def window(qtbot, model_dir, tmp_path, monkeypatch, boxes, thread_errors):
    from PySide6.QtCore import QCoreApplication, QSettings, QStandardPaths
    from shiboken6 import isValid

    QStandardPaths.setTestModeEnabled(True)
    QCoreApplication.setOrganizationName("PGR2M-tests")
    QSettings().clear()
    import pgr2m_studio.main_window as mw

    monkeypatch.setattr(mw, "autosave_folder", lambda: tmp_path / "autosave")
    win = mw.MainWindow(str(model_dir))
    win.resize(1200, 800)
    win.show()
    qtbot.waitUntil(lambda: win.pipeline is not None, timeout=60_000)
    yield win
    if isValid(win) and win.isVisible():
        qtbot.waitUntil(lambda: not win.runner.busy, timeout=30_000)
        win.close()
    if isValid(win):
        win.deleteLater()
    assert not thread_errors


class Gate:
    """Holds every call of a Pipeline method on the job thread until the test lets it pass."""

    def __init__(self, monkeypatch, name: str):
        from core.pipeline import Pipeline

        self.arrived = 0            # calls that reached the gate
        self.pipes = []             # the pipeline of each call
        self.error: Exception | None = None        # raised instead of calling the method
        self._sem = threading.Semaphore(0)
        self._open = threading.Event()
        real = getattr(Pipeline, name)

        def held(pipe, *a, **k):
            self.pipes.append(pipe)
            self.arrived += 1
            deadline = time.monotonic() + 60
            while not self._open.is_set() and not self._sem.acquire(timeout=0.02):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Pipeline.{name} was never released")
            if self.error is not None:
                raise self.error
            return real(pipe, *a, **k)

        monkeypatch.setattr(Pipeline, name, held)

    def release(self, n: int = 1) -> None:
        self._sem.release(n)

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._open.clear()

    def wait(self, qtbot, n: int = 1, timeout: int = 30_000) -> None:
        qtbot.waitUntil(lambda: self.arrived >= n, timeout=timeout)


@pytest.fixture
def gate(window, monkeypatch):
    """gate("generate") holds Pipeline.generate; every gate opens before the window is torn down."""
    made = []

    def make(name):
        made.append(Gate(monkeypatch, name))
        return made[-1]

    yield make
    for g in made:
        g.open()


def generate(qtbot, win, prompt="a person walks", samples=2, seed=5, length=40):
    start_generation(win, prompt, samples, seed, length)
    qtbot.waitUntil(lambda: win._generate_job is None and not win.runner.busy, timeout=60_000)
    assert len(win.document.samples) == samples


def start_generation(win, prompt="a person jumps", samples=3, seed=7, length=60):
    win.panel.set_settings(prompt, length, samples, seed)
    win.panel.generate_button.click()


def edit(qtbot, win, code, start, end):
    count = win.undo_stack.count()
    win.request_edit(code, start, end)
    qtbot.waitUntil(lambda: win.undo_stack.count() == count + 1 and not win.runner.busy, timeout=60_000)


def wait_idle(qtbot, win):
    qtbot.waitUntil(lambda: not win.runner.busy, timeout=60_000)
    qtbot.wait(50)                   # results already emitted reach the window


def codes(n=4):
    from core import posecodes as pc

    return [pc.GROUPS[g].first_code + 1 for g in range(n)]


def state(win):
    """What the user sees of the document, by identity: any change shows."""
    d = win.document
    return (d, [id(m) for m in d.samples], d.current, d.dirty, win.undo_stack.count(), win.undo_stack.index())


def status(win) -> str:
    return win.statusBar().currentMessage()


def same_motions(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x.joints, y.joints) and x.seed == y.seed for x, y in zip(a, b))


def ticking(qtbot, ms=20):
    """A timer that records when it fires: the window's event loop is running."""
    from PySide6.QtCore import QTimer

    ticks = []
    timer = QTimer(interval=ms)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    return timer, ticks


def save_as(win, monkeypatch, path):
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), PROJECT))
    return win.save_as()


# -- while a generation runs -----------------------------------------------------------------


def test_while_generating_edits_are_refused_and_the_window_stays_responsive(window, gate, qtbot):
    from PySide6.QtCore import QPointF, Qt

    win = window
    generate(qtbot, win)
    old = win.document.samples
    edits = gate("edit")
    edits.open()                                          # only counts the edit calls
    held = gate("generate")
    start_generation(win)
    held.wait(qtbot)
    assert win.panel.cancel_button.isEnabled() and not win.panel.generate_button.isEnabled()

    timer, ticks = ticking(qtbot)                         # the job blocks; the window does not
    qtbot.waitUntil(lambda: len(ticks) >= 10, timeout=1000)
    timer.stop()
    # a click on a pose-code cell and a direct request: refused, with a word why
    grid = win.grid
    row = int(np.ceil(grid.view.viewRange()[1][0])) + 1
    scene = grid.view.mapViewToScene(QPointF(3.5, row + 0.5))
    with qtbot.waitSignal(grid.code_clicked, timeout=1000):
        qtbot.mouseClick(grid.plot_widget.viewport(), Qt.LeftButton, pos=grid.plot_widget.mapFromScene(scene))
    assert "generation is running" in status(win).lower()
    win.request_edit(codes()[0], 0, 2)
    assert not win._pending_edits and win._edit_job is None
    # picking, undo and redo work on what is shown now
    win.panel.list.setCurrentRow(1)
    assert win.document.current == 1
    win.undo_stack.undo()
    assert win.document.samples == [] and win.document.motion is None
    win.undo_stack.redo()
    assert win.document.samples == old and win.document.current == 0
    win.panel.list.setCurrentRow(1)

    held.open()
    wait_idle(qtbot, win)
    new = win.document.samples
    assert len(new) == 3 and win.document.current == 0 and new[0].n_frames == 60
    assert win.undo_stack.count() == 2 and edits.arrived == 0
    assert win.panel.generate_button.isEnabled() and not win.panel.cancel_button.isEnabled()
    win.undo_stack.undo()                                 # the generation's undo restores the pick
    assert win.document.samples == old and win.document.current == 1


def test_save_and_save_as_while_generating_write_the_document_as_it_was(window, gate, qtbot, tmp_path,
                                                                         monkeypatch):
    from core.project import load_project

    win = window
    generate(qtbot, win)
    win.panel.list.setCurrentRow(1)
    before = win.document.samples
    held = gate("generate")
    start_generation(win)
    held.wait(qtbot)
    path = tmp_path / "during.pgr2m"
    assert save_as(win, monkeypatch, path)
    assert not win.document.dirty and win.undo_stack.isClean()
    assert win.save()                                     # Save to the same file, still in flight
    held.open()
    wait_idle(qtbot, win)
    assert len(win.document.samples) == 3
    assert win.document.dirty and win.windowTitle().startswith("during.pgr2m *")   # the result is unsaved
    saved = load_project(path)
    assert same_motions(saved.samples, before) and saved.current == 1

    # the result arrives while the Save As dialog is open: the file holds it, the title is clean
    from PySide6.QtWidgets import QFileDialog

    held.close()
    shown = win.document.samples
    start_generation(win, "a person kicks", samples=1, seed=9, length=20)
    held.wait(qtbot, 2)
    path2 = tmp_path / "arrived.pgr2m"

    def dialog(*a, **k):
        held.open()
        qtbot.waitUntil(lambda: win.document.samples != shown, timeout=60_000)
        return str(path2), PROJECT

    monkeypatch.setattr(QFileDialog, "getSaveFileName", dialog)
    assert win.save_as()
    assert not win.document.dirty and win.document.path == path2
    reopened = load_project(path2)
    assert same_motions(reopened.samples, win.document.samples) and reopened.samples[0].n_frames == 20


def test_export_while_generating_writes_the_motion_shown(window, gate, qtbot, tmp_path):
    from core.formats.bvh import read

    win = window
    generate(qtbot, win, samples=1, length=40)
    held = gate("generate")
    start_generation(win, samples=1, length=60)
    held.wait(qtbot)
    out = tmp_path / "during.bvh"
    assert win.export({"path": out, "fmt": "bvh", "fps": None, "frames": None, "scale": 100.0})
    held.open()
    wait_idle(qtbot, win)
    assert read(out).n_frames == 40 and win.document.motion.n_frames == 60


@pytest.mark.parametrize("how", ["new", "open", "recover"])
def test_a_generation_for_a_replaced_document_is_dropped(window, gate, qtbot, tmp_path, monkeypatch, how, boxes):
    from core.document import Document
    from core.project import autosave, save_project

    win = window
    generate(qtbot, win)
    other = Document(prompt="saved earlier", n_samples=2)
    other.set_samples(win.document.samples[::-1], 1)
    path = tmp_path / "other.pgr2m"
    save_project(path, other)
    held = gate("generate")
    start_generation(win)
    held.wait(qtbot)
    if how == "new":
        win.new_document()
    elif how == "open":
        assert win.open_project(str(path))
    else:
        from PySide6.QtWidgets import QMessageBox

        import pgr2m_studio.main_window as mw

        autosave(other, mw.autosave_folder())
        monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
        win.offer_recovery()
    assert boxes["question"] or how == "recover"         # the unsaved generation settings were asked about
    replaced = state(win)
    assert win.panel.generate_button.isEnabled() and not win.panel.cancel_button.isEnabled()
    assert "generation" in status(win).lower()
    held.open()
    wait_idle(qtbot, win)
    assert state(win) == replaced                         # the old document's result did not land here
    assert len(win.document.samples) == (0 if how == "new" else 2)
    assert not boxes["error"]
    generate(qtbot, win, samples=1)                       # and the new document generates normally
    assert win.undo_stack.count() == 1


def test_loading_another_model_while_generating(window, gate, qtbot, other_model_dir):
    """The generation finishes with the model it started with (it comes first in the job queue);
    Generate stays off until the new model is in; the next generation uses the new model."""
    win = window
    old = win.pipeline
    held = gate("generate")
    loading = gate("__init__")
    start_generation(win)
    held.wait(qtbot)
    win.load_model(str(other_model_dir))
    assert not win.panel.generate_button.isEnabled()
    held.open()
    qtbot.waitUntil(lambda: win._generate_job is None, timeout=60_000)
    loading.wait(qtbot)
    assert len(win.document.samples) == 3 and held.pipes == [old]
    assert win.pipeline is old and not win.panel.generate_button.isEnabled()     # still loading
    loading.open()
    qtbot.waitUntil(lambda: win.pipeline is not old, timeout=60_000)
    assert win.panel.generate_button.isEnabled() and win.model_dir == str(other_model_dir)
    generate(qtbot, win, samples=1)
    assert held.pipes[-1] is win.pipeline
    assert win.undo_stack.count() == 2


@pytest.mark.parametrize("job,delete", [("generate", False), ("generate", True), ("edit", True)])
def test_closing_while_a_job_runs_is_bounded_and_drops_what_comes_after(window, gate, qtbot, job, delete,
                                                                         thread_errors):
    from PySide6.QtCore import QCoreApplication, QEvent

    win = window
    generate(qtbot, win, samples=1)
    loads = gate("__init__")
    loads.open()                                           # only counts model loads
    held = gate(job)
    if job == "generate":
        start_generation(win)
    else:
        win.request_edit(codes()[0], 0, 3)
        win.request_edit(codes()[1], 0, 3)
    held.wait(qtbot)
    win.load_model(str(win.model_dir))                     # queued behind the held job
    samples = win.document.samples
    thread = win.runner._thread
    t0 = time.monotonic()
    win.close()
    assert time.monotonic() - t0 < 5.0
    assert not win.isVisible()
    if delete:
        win.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    held.open()                                            # the job ends after the close
    thread.join(30)
    assert not thread.is_alive()
    qtbot.wait(100)
    assert not thread_errors
    assert held.arrived == 1 and loads.arrived == 0         # nothing queued started after the close
    if not delete:
        assert win.document.samples == samples and win.undo_stack.count() == 1


# -- while an edit runs ------------------------------------------------------------------------


def test_edits_requested_during_an_edit_queue_in_order(window, gate, qtbot):
    win = window
    generate(qtbot, win, samples=1)
    a, b, c = codes(3)
    held = gate("edit")
    win.request_edit(a, 0, 3)
    held.wait(qtbot)
    win.request_edit(b, 1, 4)
    win.request_edit(c, 2, 5)
    assert len(win._pending_edits) == 2 and win.undo_stack.count() == 1
    held.release()
    held.wait(qtbot, 2)                                    # the second runs on the first's result
    assert win.undo_stack.count() == 2
    held.open()
    wait_idle(qtbot, win)
    assert win.undo_stack.count() == 4
    ids = win.document.motion.code_ids()
    from core import posecodes as pc

    for code, start, end in ((a, 0, 3), (b, 1, 4), (c, 2, 5)):
        assert (ids[start:end, pc.CODE_GROUP[code]] == code).all()


@pytest.mark.parametrize("change", ["undo", "pick", "new", "open"])
def test_an_edit_whose_motion_changed_underneath_is_dropped(window, gate, qtbot, tmp_path, monkeypatch, change):
    win = window
    generate(qtbot, win)
    a, b, c = codes(3)
    edit(qtbot, win, a, 0, 2)
    edited = win.document.motion
    path = tmp_path / "work.pgr2m"
    assert save_as(win, monkeypatch, path)
    held = gate("edit")
    win.request_edit(b, 2, 4)
    held.wait(qtbot)
    win.request_edit(c, 4, 6)                              # queued behind: meant for b's result
    if change == "undo":
        win.undo_stack.undo()
    elif change == "pick":
        win.panel.list.setCurrentRow(1)
    elif change == "new":
        win.new_document()
    else:
        assert win.open_project(str(path))
    changed = state(win)
    held.open()
    wait_idle(qtbot, win)
    assert state(win) == changed
    assert held.arrived == 1                               # c was dropped with b, never computed
    assert "dropped" in status(win).lower()
    if change == "undo":
        win.undo_stack.redo()
        assert win.document.motion is edited
    if change == "pick":
        win.panel.list.setCurrentRow(0)
        assert win.document.motion is edited and win.undo_stack.count() == 2
    if change in ("new", "open"):                          # the window edits the new document normally
        if change == "new":
            generate(qtbot, win, samples=1)
        count = win.undo_stack.count()
        edit(qtbot, win, b, 2, 4)
        assert win.undo_stack.count() == count + 1


def test_saving_during_an_edit_saves_the_motion_before_it(window, gate, qtbot, tmp_path, monkeypatch):
    from core.project import load_project

    win = window
    generate(qtbot, win, samples=1)
    before = win.document.motion
    held = gate("edit")
    win.request_edit(codes()[0], 0, 4)
    held.wait(qtbot)
    path = tmp_path / "edit.pgr2m"
    assert save_as(win, monkeypatch, path)
    assert not win.document.dirty
    held.open()
    qtbot.waitUntil(lambda: win.document.motion is not before, timeout=60_000)
    assert win.document.dirty and win.undo_stack.count() == 2 and not win.undo_stack.isClean()
    assert np.array_equal(load_project(path).motion.joints, before.joints)
    assert win.save()
    assert np.array_equal(load_project(path).motion.joints, win.document.motion.joints)


# -- a job that fails ------------------------------------------------------------------------


def test_a_generation_that_fails_while_saving_leaves_the_document_untouched(window, gate, qtbot, tmp_path,
                                                                             monkeypatch, boxes):
    from core.project import load_project

    win = window
    generate(qtbot, win)
    held = gate("generate")
    held.error = RuntimeError("boom in the model")
    start_generation(win)
    held.wait(qtbot)
    path = tmp_path / "fail.pgr2m"
    assert save_as(win, monkeypatch, path)
    saved = state(win)
    held.open()
    wait_idle(qtbot, win)
    assert len(boxes["error"]) == 1 and "boom in the model" in boxes["error"][0]
    assert "boom" in status(win)
    assert state(win) == saved and not win.document.dirty
    assert win.panel.generate_button.isEnabled() and not win.panel.cancel_button.isEnabled()
    assert same_motions(load_project(path).samples, win.document.samples)


def test_an_edit_that_fails_drops_the_queued_edits_and_keeps_the_motion(window, gate, qtbot, tmp_path,
                                                                        monkeypatch, boxes):
    win = window
    generate(qtbot, win, samples=1)
    held = gate("edit")
    held.error = ValueError("edit went wrong")
    a, b, _ = codes(3)
    win.request_edit(a, 0, 2)
    held.wait(qtbot)
    win.request_edit(b, 0, 2)
    assert save_as(win, monkeypatch, tmp_path / "e.pgr2m")
    saved = state(win)
    held.open()
    wait_idle(qtbot, win)
    assert boxes["error"] == ["edit went wrong"]
    assert state(win) == saved and held.arrived == 1 and not win._pending_edits
    held.error = None
    edit(qtbot, win, b, 0, 2)                              # the next edit works
    assert win.undo_stack.count() == 2


# -- while training runs -----------------------------------------------------------------------

TINY = ("batch_size=4 threads=1 warmup_steps=2 lr=1e-3 log_every=1 val_every=100000 ckpt_every=100000 "
        "tokenizer:window=16 tokenizer:model.width=32 tokenizer:model.code_dim=32 tokenizer:model.n_codes=16")


def descendants(pid: int) -> set[int]:
    """Processes below pid (Linux /proc), for orphan checks."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="checks processes through /proc")
def test_the_window_works_while_training_and_quitting_stops_the_training(window, qtbot, tiny_dataset,
                                                                          tmp_path, monkeypatch):
    from pgr2m_studio.training_dialog import TrainingDialog

    win = window
    win.show_training()
    dialog = win.findChild(TrainingDialog, "TrainingDialog")
    dialog.data_edit.setText(str(tiny_dataset))
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("humanml3d"))
    for name, box in dialog.stage_boxes.items():
        box.setChecked(name == "tokenizer")
    dialog.device_combo.setCurrentText("cpu")
    dialog.out_edit.setText(str(tmp_path / "run"))
    dialog.steps_spin.setValue(1_000_000)                  # runs until stopped
    dialog.extra_edit.setText(TINY)
    dialog.start_button.click()
    try:
        qtbot.waitUntil(lambda: dialog.progress.value() > 0 or dialog.plot.point_count("tokenizer loss") > 0,
                        timeout=180_000)
        assert dialog.process.running, dialog.log.toPlainText()
        pid = dialog.process._proc.processId()
        below = descendants(pid)

        timer, ticks = ticking(qtbot, 50)
        t0 = time.monotonic()
        generate(qtbot, win, samples=1)
        edit(qtbot, win, codes()[0], 0, 3)
        assert save_as(win, monkeypatch, tmp_path / "while_training.pgr2m")
        ticks.append(time.monotonic())
        timer.stop()
        gaps = np.diff([t0, *ticks])
        assert gaps.max() < 1.0, f"the event loop stalled for {gaps.max():.2f} s"
        assert win.undo_stack.count() == 2 and not win.document.dirty
        assert dialog.process.running and alive(pid)       # training went on meanwhile

        t0 = time.monotonic()
        win.quit_action.trigger()                          # File → Quit
        assert time.monotonic() - t0 < 15.0
        assert not win.isVisible() and not dialog.isVisible()
        assert not dialog.process.running
        assert not alive(pid) and not any(alive(p) for p in below)
    finally:
        dialog.process.stop_now()

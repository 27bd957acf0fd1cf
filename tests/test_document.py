"""Document: state, events, validation and copy-on-write snapshots."""

import numpy as np
import pytest

from core import posecodes as pc
from core.document import MAX_LENGTH, Document
from core.motion import Motion


def fake_motion(seed=0, steps=5, prompt="walk"):
    """A structurally valid Motion without a model (the Document never looks inside)."""
    rng = np.random.default_rng(seed)
    ids = np.array([rng.integers(g.first_code, g.first_code + g.n_codes, steps) for g in pc.GROUPS]).T
    return Motion(joints=rng.standard_normal((4 * steps, 22, 3)).astype(np.float32),
                  features=rng.standard_normal((4 * steps, 263)).astype(np.float32),
                  pose_codes=pc.from_indices(ids), residual_codes=rng.integers(0, 16, (6, steps)),
                  prompt=prompt, seed=seed)


@pytest.fixture
def doc():
    d = Document(prompt="walk")
    d.events = []
    d.subscribe(d.events.append)
    return d


def test_new_document_defaults():
    a, b = Document(), Document()
    assert a.uid != b.uid and len(a.uid) == 32 and int(a.uid, 16) >= 0
    assert (a.prompt, a.length, a.n_samples, a.seed, a.model_dir) == ("", None, 1, None, None)
    assert a.samples == [] and a.current == -1 and a.motion is None
    assert a.path is None and not a.dirty and a.created


def test_set_samples_and_pick(doc):
    ms = [fake_motion(i) for i in range(3)]
    doc.set_samples(ms, current=1)
    assert doc.events == ["samples", "motion", "dirty"]
    assert doc.current == 1 and doc.motion is ms[1] and doc.dirty
    doc.samples.clear()                     # a copy: the document keeps its list
    assert len(doc.samples) == 3
    doc.events.clear()
    doc.pick(2)
    doc.pick(2)                             # no change, no event
    assert doc.events == ["motion"] and doc.motion is ms[2]
    with pytest.raises(IndexError):
        doc.pick(3)
    with pytest.raises(ValueError, match="current"):
        doc.set_samples(ms, current=3)
    with pytest.raises(TypeError):
        doc.set_samples([object()])
    assert doc.current == 2 and len(doc.samples) == 3     # failed calls changed nothing
    doc.set_samples([])
    assert doc.current == -1 and doc.motion is None


def test_pick_does_not_dirty(doc):
    doc.set_samples([fake_motion(0), fake_motion(1)])
    doc.mark_saved("/tmp/x.pgr2m")
    doc.pick(1)
    assert not doc.dirty


def test_replace_motion_keeps_old_snapshots_intact(doc):
    ms = [fake_motion(0), fake_motion(1)]
    doc.set_samples(ms)
    doc.mark_saved("/tmp/x.pgr2m")
    doc.events.clear()
    before = ms[0].joints.copy()
    new = fake_motion(9)
    old = doc.replace_motion(new)
    assert old is ms[0] and doc.motion is new and doc.dirty
    assert doc.events == ["motion", "dirty"]
    assert np.array_equal(old.joints, before)               # undo can rely on it
    doc.pick(1)
    doc.events.clear()
    assert doc.replace_motion(old, index=0) is new          # undo: restores and shows sample 0
    assert doc.current == 0 and doc.motion is ms[0] and doc.events == ["motion"]
    with pytest.raises(IndexError):
        doc.replace_motion(new, index=5)
    with pytest.raises(ValueError, match="no sample"):
        Document().replace_motion(new)


def test_settings_validate_and_emit(doc):
    doc.set_settings(prompt="run", length=80, n_samples=4, seed=7, model_dir="/models/x")
    assert doc.events == ["settings", "dirty"]
    assert doc.settings() == {"prompt": "run", "length": 80, "n_samples": 4, "seed": 7, "model_dir": "/models/x"}
    doc.events.clear()
    doc.set_settings(prompt="run", length=80)               # unchanged: silent
    doc.set_settings(length=None, seed=None, model_dir="")
    assert doc.events == ["settings"] and doc.length is None and doc.model_dir is None


@pytest.mark.parametrize("kw, match", [
    ({"length": 3}, r"length must be 4\.\.196 frames"), ({"length": MAX_LENGTH + 1}, "length"),
    ({"length": 40.0}, "whole number"), ({"length": True}, "whole number"),
    ({"n_samples": 0}, r"n_samples must be 1\.\.64"), ({"n_samples": 65}, "n_samples"),
    ({"seed": -2**63 - 1}, "seed"), ({"seed": 2**64}, "seed"), ({"seed": 1.5}, "seed"), ({"prompt": 5}, "prompt must be text"),
    ({"model_dir": 3}, "model_dir")])
def test_bad_settings_change_nothing(doc, kw, match):
    with pytest.raises(ValueError, match=match):
        doc.set_settings(**{"n_samples": 2, **kw})       # the valid part is not applied either
    assert doc.prompt == "walk" and doc.n_samples == 1 and doc.events == [] and not doc.dirty
    with pytest.raises(ValueError, match=match):
        Document(**{"prompt": "x", **kw})


def test_unknown_setting_is_a_type_error(doc):
    with pytest.raises(TypeError, match="colour"):
        doc.set_settings(colour="red")


def test_mark_saved_and_subscriptions(doc):
    doc.set_samples([fake_motion()])
    doc.events.clear()
    doc.mark_saved("/tmp/a.pgr2m")
    assert doc.events == ["path", "dirty"] and str(doc.path) == "/tmp/a.pgr2m" and not doc.dirty
    doc.events.clear()
    doc.mark_saved("/tmp/a.pgr2m")
    assert doc.events == []
    doc.mark_dirty()
    assert doc.dirty and doc.events == ["dirty"]

    seen = []
    unsubscribe = doc.subscribe(seen.append)

    def broken(event):
        raise RuntimeError("listener bug")
    doc.subscribe(broken)
    later = []
    doc.subscribe(later.append)
    with pytest.raises(RuntimeError, match="listener bug"):
        doc.set_settings(seed=1)
    assert seen == ["settings"] and later == ["settings"]   # one broken listener starves nobody
    unsubscribe()
    unsubscribe()                                          # twice is harmless
    with pytest.raises(RuntimeError):
        doc.set_settings(seed=2)
    assert seen == ["settings"]

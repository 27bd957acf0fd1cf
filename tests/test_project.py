"""The .pgr2m project file: round trip, atomic saves, hostile files, autosave and recovery."""

import io
import json
import os
import time
import warnings
import zipfile

import numpy as np
import pytest
import torch
from model_factory import make_model_folder
from test_document import fake_motion

from core import project
from core.document import Document
from core.motion import Edit
from core.pipeline import Pipeline
from core.project import ProjectError, autosave, discard_autosave, load_project, recoverable, save_project

FIELDS = ("joints", "features", "pose_codes", "residual_codes", "cond")


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    return Pipeline(make_model_folder(tmp_path_factory.mktemp("model")))


@pytest.fixture(scope="module")
def motions(pipe):
    cond = torch.randn(1, 12, 384, generator=torch.Generator().manual_seed(0))   # skips the text encoder
    return pipe.generate("a person walks", n_samples=2, seed=5, length=40, cond=cond)


def make_doc(motions):
    doc = Document(prompt="a person walks", length=40, n_samples=3, seed=5, model_dir="/models/tiny")
    no_cond = fake_motion(3, prompt="jump")                 # cond None, other shapes
    no_cond.fps = 30.0
    doc.set_samples([*motions, no_cond], current=1)
    return doc


@pytest.fixture(scope="module")
def good(motions, tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "good.pgr2m"
    save_project(path, make_doc(motions))
    return path


def same_motion(a, b):
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        if x is None or y is None:
            assert x is None and y is None, f
        else:
            assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), f
    assert (a.prompt, a.seed, a.fps) == (b.prompt, b.seed, b.fps)


def test_round_trip_is_exact(pipe, motions, tmp_path):
    doc = make_doc(motions)
    path = save_project(tmp_path / "walk.pgr2m", doc)
    assert doc.dirty and doc.path is None                   # saving alone does not mark saved
    back = load_project(path)
    assert back.settings() == doc.settings() and back.current == 1 and back.created == doc.created
    assert back.path == path and not back.dirty and back.uid != doc.uid
    assert len(back.samples) == 3
    for a, b in zip(doc.samples, back.samples):
        same_motion(a, b)
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["motions.npz", "project.json"]
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
        h = json.loads(z.read("project.json"))
    assert (h["format"], h["version"], h["app_version"]) == ("pgr2m-project", 1, "0.1.0")
    assert h["samples"][2] == {"prompt": "jump", "seed": 3, "fps": 30.0, "frames": 20, "steps": 5,
                               "has_cond": False}
    edited = pipe.edit(back.motion, [Edit(0, 0, 2)])       # loaded arrays feed the model again
    assert edited.code_ids()[0, 0] == 0 and edited.n_frames == 40


def test_empty_document_round_trip(tmp_path):
    doc = Document(prompt="nothing yet ☃ \ud800")         # a lone surrogate must not break saving
    back = load_project(save_project(tmp_path / "e.pgr2m", doc))
    assert back.samples == [] and back.current == -1 and back.prompt == doc.prompt


def test_a_failed_save_leaves_the_old_file(motions, tmp_path, monkeypatch):
    path = tmp_path / "p.pgr2m"
    save_project(path, make_doc(motions))
    before = path.read_bytes()
    real = np.savez

    def half_then_crash(file, *a, **kw):
        file.write(b"\0" * 100_000)                          # part of the new file is on disk
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", half_then_crash)
    doc = Document(prompt="new work")
    doc.set_samples([fake_motion(1)])
    with pytest.raises(OSError, match="disk full"):
        save_project(path, doc)
    monkeypatch.setattr(np, "savez", real)
    assert path.read_bytes() == before and load_project(path).prompt == "a person walks"
    assert sorted(os.listdir(tmp_path)) == ["p.pgr2m"]       # no temporary file left behind


# --------------------------------------------------------------------------
# broken files, each built from a good one

def read_members(path):
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def write_members(path, members):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                     # duplicate names are on purpose
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in (members.items() if isinstance(members, dict) else members):
                z.writestr(name, data)
    return path


def npz_bytes(arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def rebuilt(good, path, change):
    """good with change(header, arrays) applied."""
    m = read_members(good)
    h = json.loads(m["project.json"])
    with np.load(io.BytesIO(m["motions.npz"])) as z:
        a = {k: z[k] for k in z.files}
    change(h, a)
    m["project.json"] = json.dumps(h).encode()
    m["motions.npz"] = npz_bytes(a)
    return write_members(path, m)


def _set(d, key, value):
    d[key] = value


BROKEN = {
    "newer version": (lambda h, a: _set(h, "version", 2), "newer PGR²M Studio"),
    "version zero": (lambda h, a: _set(h, "version", 0), "invalid format version"),
    "version text": (lambda h, a: _set(h, "version", "1"), "invalid format version"),
    "other format": (lambda h, a: _set(h, "format", "blender"), "does not describe"),
    "bad length": (lambda h, a: h["settings"].update(length=500), "length must be"),
    "missing setting": (lambda h, a: h["settings"].pop("seed"), "settings must have"),
    "current too big": (lambda h, a: _set(h, "current", 3), "current sample"),
    "extra sample": (lambda h, a: h["samples"].append(h["samples"][0]), "does not match the samples"),
    "missing array": (lambda h, a: a.pop("s0_features"), "missing: s0_features"),
    "extra array": (lambda h, a: _set(a, "s9_joints", a["s0_joints"]), "unexpected: s9_joints"),
    "cond flag lies": (lambda h, a: h["samples"][2].update(has_cond=True), "missing: s2_cond"),
    "frames lie": (lambda h, a: h["samples"][0].update(frames=44), r"s0_joints has shape \(40, 22, 3\)"),
    "bad fps": (lambda h, a: h["samples"][0].update(fps=-1), "fps"),
    "bad prompt": (lambda h, a: h["samples"][0].update(prompt=None), "prompt must be text"),
    "int joints": (lambda h, a: _set(a, "s0_joints", a["s0_joints"].astype(np.int32)), "float32 or float64"),
    "float16 features": (lambda h, a: _set(a, "s0_features", a["s0_features"].astype(np.float16)),
                         "float32 or float64"),
    "short features": (lambda h, a: _set(a, "s0_features", a["s0_features"][:, :262]), "shape"),
    "nan joints": (lambda h, a: a["s1_joints"].__setitem__((3, 4, 1), np.nan), "NaN"),
    "inf cond": (lambda h, a: a["s0_cond"].__setitem__((0, 0), np.inf), "NaN or infinite"),
    "int pose codes": (lambda h, a: _set(a, "s0_pose_codes", a["s0_pose_codes"].astype(np.uint8)), "bool"),
    "two codes in a group": (lambda h, a: a["s0_pose_codes"].__setitem__((0, slice(0, 2)), True),
                             "active codes, expected 1"),
    "negative residual": (lambda h, a: a["s1_residual_codes"].__setitem__((0, 0), -1), "non-negative"),
    "int32 residual": (lambda h, a: _set(a, "s1_residual_codes", a["s1_residual_codes"].astype(np.int32)),
                       "int64"),
    "cond rows": (lambda h, a: _set(a, "s0_cond", a["s0_cond"][:11]), r"expected \(12, \*\)"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_broken_project_is_refused(good, tmp_path, case):
    change, match = BROKEN[case]
    with pytest.raises(ProjectError, match=match):
        load_project(rebuilt(good, tmp_path / "bad.pgr2m", change))


def test_broken_archives_are_refused(good, tmp_path):
    m = read_members(good)
    cases = {
        "not a zip": (b"hello, I am text\n" * 10, "not a PGR²M project or damaged"),
        "empty": (b"", "not a PGR²M project or damaged"),
        "truncated": (good.read_bytes()[: good.stat().st_size // 2], "not a PGR²M project or damaged"),
    }
    for name, (data, match) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ProjectError, match=match):
            load_project(tmp_path / name)
    members = [
        ({"project.json": m["project.json"]}, "motions.npz missing"),
        ({"motions.npz": m["motions.npz"]}, "project.json missing"),
        ({**m, "project.json": b"{not json"}, "not valid JSON"),
        ({**m, "project.json": b"\xff\xfe"}, "not valid JSON"),
        ({**m, "project.json": b"[1, 2]"}, "does not describe"),
        ({**m, "project.json": b"[" * 100_000}, "not valid JSON"),
        ([*m.items(), ("project.json", m["project.json"])], "duplicate"),
        ({**m, "motions.npz": b"PK not really"}, "damaged"),
        ({**m, "motions.npz": m["motions.npz"][:-30]}, "damaged"),
    ]
    for i, (content, match) in enumerate(members):
        with pytest.raises(ProjectError, match=match):
            load_project(write_members(tmp_path / f"m{i}.pgr2m", content))
    with pytest.raises(ProjectError, match="cannot read"):
        load_project(tmp_path / "does-not-exist.pgr2m")


class Payload:
    """Unpickling this creates the marker file: proof that pickle ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickled_npy(marker):
    arr = np.empty(1, dtype=object)
    arr[0] = Payload(marker)
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def test_pickled_arrays_are_never_unpickled(good, tmp_path, monkeypatch):
    live = tmp_path / "live-marker"                         # the payload works when allowed
    np.load(io.BytesIO(pickled_npy(live)), allow_pickle=True)
    assert live.exists()

    marker = tmp_path / "marker"
    m = read_members(good)
    with zipfile.ZipFile(io.BytesIO(m["motions.npz"])) as z:
        inner = {n: z.read(n) for n in z.namelist()}
    inner["s0_joints.npy"] = pickled_npy(marker)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, d in inner.items():
            z.writestr(n, d)
    path = write_members(tmp_path / "pickle.pgr2m", {**m, "motions.npz": buf.getvalue()})
    with pytest.raises(ProjectError, match="object arrays"):
        load_project(path)
    # and np.load(allow_pickle=False) itself refuses it, should the header check be bypassed
    monkeypatch.setattr(project, "_check_npy_header", lambda zf, info: None)
    with pytest.raises(ProjectError, match="allow_pickle"):
        load_project(path)
    assert not marker.exists()


def test_array_header_that_lies_about_its_size(good, tmp_path):
    m = read_members(good)
    with zipfile.ZipFile(io.BytesIO(m["motions.npz"])) as z:
        inner = {n: z.read(n) for n in z.namelist()}
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": "<f4", "fortran_order": False,
                                               "shape": (10**9, 22, 3)})
    inner["s0_joints.npy"] = hdr.getvalue() + b"\0" * 64     # magic + header claim 264 GB
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, d in inner.items():
            z.writestr(n, d)
    with pytest.raises(ProjectError, match="does not match its shape"):
        load_project(write_members(tmp_path / "lie.pgr2m", {**m, "motions.npz": buf.getvalue()}))


def test_zip_bombs_are_refused_before_unpacking(good, tmp_path, monkeypatch):
    assert project.MAX_BYTES <= 2**30 and project.MAX_MEMBERS <= 64
    m = read_members(good)
    many = write_members(tmp_path / "many.pgr2m", {**m, **{f"junk{i}": b"" for i in range(70)}})
    monkeypatch.setattr(project, "MAX_BYTES", 2**20)        # a 1 MiB limit keeps the bomb small
    bomb = write_members(tmp_path / "bomb.pgr2m", {**m, "zeros": b"\0" * (2 * 2**20)})
    small = io.BytesIO()                                    # compressed inside: small outside
    np.savez_compressed(small, s0_joints=np.zeros(2**19, np.float32))
    inner_bomb = write_members(tmp_path / "inner.pgr2m", {**m, "motions.npz": small.getvalue()})
    assert bomb.stat().st_size < 2**20 // 4                 # it is small on disk

    def no_unpacking(*a, **kw):
        raise AssertionError("a member was opened before the size check")
    monkeypatch.setattr(zipfile.ZipFile, "open", no_unpacking)
    with pytest.raises(ProjectError, match="70|members"):
        load_project(many)
    with pytest.raises(ProjectError, match="would unpack to 2 MiB"):
        load_project(bomb)
    monkeypatch.undo()
    monkeypatch.setattr(project, "MAX_BYTES", 2**20)
    with pytest.raises(ProjectError, match="motions.npz would unpack to 2 MiB"):
        load_project(inner_bomb)


# --------------------------------------------------------------------------
# autosave

def test_autosave_recover_and_discard(motions, tmp_path):
    folder = tmp_path / "autosave"
    assert recoverable(folder) == []
    a = make_doc(motions)
    a.mark_saved(tmp_path / "mine.pgr2m")
    a.set_settings(prompt="changed since the save")
    b = Document(prompt="never saved")
    b.set_samples([fake_motion(4)])
    autosave(a, folder)
    time.sleep(0.01)
    target = autosave(b, folder)
    assert target == folder / f"{b.uid}.pgr2m" and (folder / f"{b.uid}.json").is_file()
    assert a.dirty and b.dirty and b.path is None           # autosave is not a save
    (folder / "garbage.pgr2m").write_bytes(b"not a project")
    problems = []
    found = recoverable(folder, problems)
    assert [s.uid for s in found] == [b.uid, a.uid]         # newest first
    assert len(problems) == 1 and "garbage.pgr2m" in problems[0]
    assert found[1].original == tmp_path / "mine.pgr2m" and found[0].original is None
    assert found[1].prompt == "changed since the save" and found[1].n_samples == 3

    back = found[1].load()
    assert back.uid == a.uid and back.path == tmp_path / "mine.pgr2m" and back.dirty
    assert back.prompt == "changed since the save" and back.current == 1
    for x, y in zip(a.samples, back.samples):
        same_motion(x, y)

    (folder / f"{b.uid}.json").unlink()                     # a lost sidecar still recovers
    assert b.uid in [s.uid for s in recoverable(folder)]
    discard_autosave(a, folder)
    discard_autosave(b.uid, folder)
    discard_autosave(b, folder)                             # already gone: fine
    assert sorted(os.listdir(folder)) == ["garbage.pgr2m"]

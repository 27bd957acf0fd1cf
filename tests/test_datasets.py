import numpy as np
import pytest
from motion_factory import synth_motion

from core import atomic, posecodes
from core.data.humanml3d import DatasetError, HumanML3DFolder
from core.features import extract_features, mean_std, recover_joints


def make_folder(root, n=6, frames=50, joints=True):
    feats = {}
    for i in range(n):
        cid = f"{i:06d}"
        f = extract_features(synth_motion(frames, seed=i))
        feats[cid] = f
        atomic.save_npy(root / "new_joint_vecs" / f"{cid}.npy", f)
        if joints:
            atomic.save_npy(root / "new_joints" / f"{cid}.npy", recover_joints(f).astype(np.float32))
        atomic.write_text(root / "texts" / f"{cid}.txt",
                          f"a person moves number {i}#a/DET person/NOUN#0.0#0.0\n"
                          f"the person waves#the/DET person/NOUN wave/VERB#0.5#1.5\n")
    mean, std = mean_std(list(feats.values()))
    atomic.save_npy(root / "Mean.npy", mean)
    atomic.save_npy(root / "Std.npy", std)
    ids = sorted(feats)
    atomic.write_text(root / "train.txt", "\n".join(ids[:4]) + "\n")
    atomic.write_text(root / "test.txt", "\n".join(ids[4:]) + "\n")
    atomic.write_text(root / "all.txt", "\n".join(ids) + "\n")
    return feats


def test_loads_split_with_codes_and_caches_them(tmp_path):
    feats = make_folder(tmp_path)
    ds = HumanML3DFolder(tmp_path, "train")
    assert ds.ids == ["000000", "000001", "000002", "000003"] and not ds.problems
    rec = ds[1]
    np.testing.assert_array_equal(rec.features, feats["000001"])
    assert rec.codes.shape == (49, 392) and (rec.codes.sum(1) == 70).all()
    cached = atomic.load_npy(tmp_path / "codes" / "000001.npy")
    np.testing.assert_array_equal(cached, rec.codes)
    np.testing.assert_array_equal(cached, posecodes.parse(atomic.load_npy(tmp_path / "new_joints" / "000001.npy")))
    assert (tmp_path / "codes" / "_parser.json").is_file()
    # second load reads the cache: a tampered cached file shows through
    tampered = cached.copy()
    tampered[:, :18] = False
    tampered[:, 5] = True
    atomic.save_npy(tmp_path / "codes" / "000001.npy", tampered)
    assert HumanML3DFolder(tmp_path, "train")[1].codes[:, 5].all()


def test_codes_from_features_when_joints_are_absent(tmp_path):
    make_folder(tmp_path, n=5, joints=False)
    ds = HumanML3DFolder(tmp_path, "test", cache_codes=False)
    assert len(ds) == 1 and ds[0].codes.shape[1] == 392
    assert not (tmp_path / "codes").exists()


def test_segments_cut_sub_clip_captions(tmp_path):
    make_folder(tmp_path, n=5)
    segs = HumanML3DFolder(tmp_path, "test").segments()
    assert [(s.start, s.end) for s in segs] == [(0, 49), (10, 30)]


def test_missing_mean_is_one_clear_error(tmp_path):
    make_folder(tmp_path, n=5)
    (tmp_path / "Mean.npy").unlink()
    with pytest.raises(DatasetError, match=r"Mean\.npy: missing"):
        HumanML3DFolder(tmp_path)


@pytest.mark.parametrize("remove,match", [("texts", "texts: missing"), ("train.txt", "split file not found")])
def test_missing_parts(tmp_path, remove, match):
    make_folder(tmp_path, n=5)
    import shutil

    target = tmp_path / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(DatasetError, match=match):
        HumanML3DFolder(tmp_path)


def test_bad_items_are_skipped_and_named(tmp_path):
    make_folder(tmp_path, n=6)
    f = atomic.load_npy(tmp_path / "new_joint_vecs" / "000000.npy")
    f[3, 10] = np.nan
    atomic.save_npy(tmp_path / "new_joint_vecs" / "000000.npy", f)
    atomic.write_text(tmp_path / "texts" / "000001.txt", "no hash in this caption\n")
    (tmp_path / "new_joint_vecs" / "000002.npy").unlink()
    atomic.save_npy(tmp_path / "new_joint_vecs" / "000003.npy", np.zeros((10, 100), np.float32))
    atomic.write_text(tmp_path / "all.txt", "000000\n000001\n000002\n000003\n000004\n../../etc/passwd\n")
    ds = HumanML3DFolder(tmp_path, "all")
    assert ds.ids == ["000004"]
    text = "\n".join(ds.problems)
    assert "000000.npy: features contains NaN" in text and "first at 3" in text
    assert "000001.txt, line 1" in text and "000002.npy: missing" in text
    assert "000003.npy: features should have shape (T, 263)" in text and "invalid clip id" in text


def test_pickled_arrays_are_refused(tmp_path):
    make_folder(tmp_path, n=5)
    np.save(tmp_path / "new_joint_vecs" / "000004.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    # the only test clip is now a pickle: nothing usable, and the message says why
    with pytest.raises(DatasetError, match="no usable motions.*pickled|no usable motions.*allow_pickle"):
        HumanML3DFolder(tmp_path, "test")


def test_atomic_writes_keep_modes_and_leave_no_temp_files(tmp_path):
    import os
    import stat

    p = tmp_path / "a.txt"
    atomic.write_text(p, "one")
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~_umask()
    os.chmod(p, 0o640)
    atomic.write_text(p, "two")
    assert p.read_text() == "two" and stat.S_IMODE(p.stat().st_mode) == 0o640
    with pytest.raises(RuntimeError):
        with atomic.atomic_open(p, "wb") as f:
            f.write(b"half")
            raise RuntimeError("crash while writing")
    assert p.read_text() == "two" and sorted(x.name for x in tmp_path.iterdir()) == ["a.txt"]


def _umask():
    import os

    m = os.umask(0)
    os.umask(m)
    return m

"""The generate / edit API and its command line, on a tiny random model folder."""

import json

import numpy as np
import pytest

from core import posecodes as pc
from core.cli import main as cli
from core.formats.motion_files import read_codes_json, save_motion
from core.motion import Edit, Motion, resolve_code, steps_showing
from core.pipeline import Pipeline, PipelineError


@pytest.fixture(scope="module")
def pipe(model_dir):
    return Pipeline(model_dir)


def test_generate_returns_complete_motions_and_is_deterministic(pipe):
    a = pipe.generate("a person walks forward", n_samples=3, seed=11, length=40)
    assert len(a) == 3
    for m in a:
        assert m.joints.shape == (40, 22, 3) and m.features.shape == (40, 263)
        assert m.pose_codes.shape == (10, 392) and m.residual_codes.shape == (6, 10)
        assert (m.pose_codes.sum(1) == 70).all() and m.fps == 20 and m.seed == 11
        assert np.isfinite(m.joints).all()
        assert m.prompt == "a person walks forward" and m.cond.shape == (12, 384)
    b = pipe.generate("a person walks forward", n_samples=3, seed=11, length=40)
    c = pipe.generate("a person walks forward", n_samples=3, seed=12, length=40)
    assert all(np.array_equal(x.joints, y.joints) for x, y in zip(a, b))
    assert not np.array_equal(a[0].pose_codes, c[0].pose_codes)
    assert not np.array_equal(a[0].pose_codes, a[1].pose_codes)       # samples differ within a batch
    unseeded = pipe.generate("jump", length=16)[0]
    assert isinstance(unseeded.seed, int)
    again = pipe.generate("jump", length=16, seed=unseeded.seed)[0]
    assert np.array_equal(unseeded.joints, again.joints)              # the printed seed reproduces it


def test_generate_several_prompts_and_lengths(pipe):
    out = pipe.generate(["walk", "kick"], n_samples=2, seed=0, length=22)
    assert [m.prompt for m in out] == ["walk", "walk", "kick", "kick"]
    assert all(m.n_frames == 24 for m in out)           # 22 frames round to 6 steps
    free = pipe.generate("walk", seed=0)[0]             # untrained END: the longest motion
    assert free.n_frames % 4 == 0 and 16 <= free.n_frames <= pipe.max_frames
    pose_only = pipe.generate("walk", seed=0, length=40, residuals=False)[0]
    assert np.array_equal(pose_only.residual_codes, np.zeros((6, 10)))


@pytest.mark.parametrize("kw, match", [({"length": 0}, "length"), ({"length": 10_000}, "length"),
                                       ({"n_samples": 0}, "n_samples"), ({"n_samples": 10_000}, "n_samples")])
def test_generate_refuses_bad_requests(pipe, kw, match):
    with pytest.raises(PipelineError, match=match):
        pipe.generate("walk", **kw)


def test_edit_sets_the_code_on_its_steps_and_keeps_the_rest(pipe):
    m = pipe.generate("a person waves", seed=3, length=64)[0]
    group = pc.GROUPS[0]
    current = m.code_ids()[:, 0]
    new = next(c for c in group.code_ids if not (current[4:9] == c).any())
    out = pipe.edit(m, [Edit(new, 4, 9)], guided=False)
    ids = out.code_ids()
    assert (ids[4:9, 0] == new).all()
    assert np.array_equal(ids[:4], m.code_ids()[:4]) and np.array_equal(ids[9:], m.code_ids()[9:])
    assert np.array_equal(np.delete(ids[4:9], 0, axis=1), np.delete(m.code_ids()[4:9], 0, axis=1))
    assert np.array_equal(out.residual_codes[:, :4], m.residual_codes[:, :4])
    assert np.array_equal(out.residual_codes[:, 9:], m.residual_codes[:, 9:])
    assert out.n_frames == m.n_frames and not np.array_equal(out.joints, m.joints)
    assert np.array_equal(pipe.edit(m, [Edit(new, 4, 9)], guided=False).joints, out.joints)  # deterministic
    # guidance then changes only the residual codes of the edited steps and one step each side
    guided = pipe.edit(m, [Edit(new, 4, 9)])
    assert np.array_equal(guided.pose_codes, out.pose_codes)
    assert np.array_equal(guided.residual_codes[:, :3], m.residual_codes[:, :3])
    assert np.array_equal(guided.residual_codes[:, 10:], m.residual_codes[:, 10:])
    assert np.array_equal(pipe.edit(m, [Edit(new, 4, 9)]).residual_codes, guided.residual_codes)
    assert np.array_equal(m.code_ids()[4:9, 0], current[4:9])                   # input untouched
    # without keeping, every step's residual codes are re-predicted from the edited pose codes
    everywhere = pipe.edit(m, [Edit(new, 4, 9)], keep_residuals_outside=False, guided=False)
    fresh = pipe.from_codes(out.pose_codes, None, m.prompt, seed=0)
    assert np.array_equal(everywhere.residual_codes, fresh.residual_codes)


def test_steps_showing_counts_what_the_joints_show(pipe):
    m = pipe.generate("a person waves", seed=3, length=64)[0]
    seen = pc.parse(m.joints)[::4]              # step t is frame 4t
    group = pc.GROUPS[5]
    here = int(np.flatnonzero(seen[6, group.first_code:group.first_code + group.n_codes])[0]) + group.first_code
    assert steps_showing(m, Edit(here, 6, 7)) == (1, 1)
    other = next(c for c in group.code_ids if c != here)
    assert steps_showing(m, Edit(other, 6, 7)) == (0, 1)
    assert steps_showing(m, Edit(here, 2, 12)) == (int(seen[2:12, here].sum()), 10)


def test_edit_effect_tells_shown_near_and_toward_apart(pipe):
    import dataclasses

    from core.pipeline_eval import edit_effect

    m = pipe.generate("a person waves", seed=3, length=64)[0]
    elbow = next(g for g in pc.GROUPS if g.name == "right elbow angle")
    straight = elbow.code_ids[-1]                       # > 170 degrees
    step = next(t for t in range(m.n_steps) if pc.measure(m.joints[4 * t])[elbow.index] < 150)
    here = int(pc.parse(m.joints)[4 * step, elbow.first_code:elbow.first_code + elbow.n_codes].argmax()) + elbow.first_code
    neighbour = here + 1 if here + 1 in elbow.code_ids else here - 1
    edit = lambda code: [Edit(code, step, step + 1)]          # noqa: E731
    assert {k: edit_effect(m, m, edit(here))[k] for k in ("shown", "near", "toward")} == {"shown": 1, "near": 1, "toward": 0}
    assert {k: edit_effect(m, m, edit(neighbour))[k] for k in ("shown", "near", "toward")} == {"shown": 0, "near": 1, "toward": 0}
    # straighten the right arm on that step's frame: the angle moves toward "straight"
    joints = m.joints.copy()
    f = 4 * step
    joints[f, 21] = joints[f, 19] + 0.5 * (joints[f, 19] - joints[f, 17])   # wrist beyond the elbow
    after = dataclasses.replace(m, joints=joints)
    effect = edit_effect(m, after, edit(straight))
    assert effect["toward"] == 1 and effect["shown"] == 1
    assert effect["outside_mean_mm"] == 0                      # other frames untouched
    assert edit_effect(after, m, edit(straight))["toward"] == 0


def test_edits_do_not_depend_on_what_was_prepared_or_cached(pipe):
    m = pipe.generate("a person walks forward", seed=5, length=64)[0]
    other = pipe.generate("a person jumps", seed=6, length=64)[0]
    e = [Edit(pc.GROUPS[3].code_ids[0], 6, 10)]
    pipe._edit_contexts.clear()
    cold = pipe.edit(m, e, guided=False)
    for _ in range(pipe.EDIT_CONTEXTS + 1):          # push m's context out of the cache
        pipe.prepare_edit(other)
        other = pipe.edit(other, [Edit(pc.GROUPS[0].code_ids[2], 1, 3)], guided=False)
    pipe.prepare_edit(m)
    warm = pipe.edit(m, e, guided=False)
    again = pipe.edit(m, e, guided=False)
    assert np.array_equal(cold.residual_codes, warm.residual_codes)
    assert np.array_equal(cold.residual_codes, again.residual_codes)
    assert len(pipe._edit_contexts) <= pipe.EDIT_CONTEXTS
    # the motion's own prompt is used when it has no stored condition
    bare = Motion(joints=m.joints, features=m.features, pose_codes=m.pose_codes, residual_codes=m.residual_codes,
                  prompt=m.prompt)
    assert np.array_equal(pipe.edit(bare, e, guided=False).residual_codes, cold.residual_codes)


def test_edit_errors_are_clear(pipe):
    m = pipe.generate("walk", seed=0, length=16)[0]
    with pytest.raises(PipelineError, match="range"):
        pipe.edit(m, [Edit(0, 2, 99)])
    with pytest.raises(PipelineError, match="no pose code"):
        pipe.edit(m, [Edit("left knee dancing", 0, 1)])
    with pytest.raises(PipelineError, match="no edit"):
        pipe.edit(m, [])


def test_code_names_are_forgiving():
    assert resolve_code("left knee bent 80-90") == pc.code_by_name("left knee bent 80–90°").index
    assert resolve_code("LEFT KNEE STRAIGHT") == pc.code_by_name("left knee straight (>170°)").index
    assert resolve_code("17") == 17
    with pytest.raises(PipelineError, match="matches"):
        resolve_code("knee")


def test_codes_json_round_trips_through_the_pipeline(pipe, tmp_path):
    m = pipe.generate("walk", seed=5, length=32)[0]
    path = save_motion(tmp_path / "m.json", m)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["steps"][2]["codes"][0]["name"] == pc.CODES[m.code_ids()[2, 0]].name
    pose, res, prompt = read_codes_json(path)
    assert np.array_equal(pose, m.pose_codes) and np.array_equal(res, m.residual_codes) and prompt == "walk"
    back = pipe.from_codes(pose, res, prompt)
    assert np.allclose(back.joints, m.joints, atol=1e-5)
    np.testing.assert_array_equal(np.load(save_motion(tmp_path / "m.npy", m)), m.joints)


def test_any_motion_can_be_tokenized_for_editing(pipe, test_data):
    from core.formats.bvh import read
    from core.formats.retarget import bvh_to_t2m

    joints = bvh_to_t2m(read(next((test_data / "bvh").glob("*.bvh"))))
    m = pipe.from_joints(joints, "a person walks")
    assert m.n_frames == (len(joints) - 1) // 4 * 4 and m.pose_codes.shape[0] == m.n_frames // 4
    with pytest.raises(PipelineError, match="joints"):
        pipe.from_joints(np.zeros((10, 21, 3)))


def test_generate_and_edit_from_the_command_line(model_dir, tmp_path, capsys):
    out = tmp_path / "wave.json"
    assert cli(["generate", "a person waves the right hand", "--model", str(model_dir), "-o", str(out),
                "--seed", "4", "--seconds", "2"]) == 0
    assert "40 frames" in capsys.readouterr().out
    edited = tmp_path / "edited.npy"
    assert cli(["edit", str(out), "-o", str(edited), "--model", str(model_dir),
                "--set", "left knee bent 80-90@2:6", "--set", "17@0:1"]) == 0
    text = capsys.readouterr().out
    assert "edited 5 step(s)" in text and "% of the edited steps" in text
    assert np.load(edited).shape == (40, 22, 3)
    bvh = tmp_path / "wave.bvh"
    assert cli(["generate", "a person waves", "--model", str(model_dir), "-o", str(bvh), "--seed", "4",
                "--length", "40", "--fps", "60"]) == 0
    from core.formats.bvh import read

    b = read(bvh)
    assert len(b.joints) == 22 and abs(b.fps - 60) < 1e-6 and b.n_frames == 118    # (40 - 1) * 3 + 1
    several = tmp_path / "s.npy"
    assert cli(["generate", "walk", "--model", str(model_dir), "-o", str(several), "--samples", "2",
                "--length", "16"]) == 0
    assert (tmp_path / "s_0.npy").is_file() and (tmp_path / "s_1.npy").is_file()


@pytest.mark.parametrize("args, message", [
    (["generate", "walk", "-o", "x.mp4"], "cannot write .mp4"),
    (["generate", "walk", "--length", "5000"], "length must be"),
    (["generate", "walk", "--model", "/nonexistent/model"], "model folder not found"),
    (["edit", "missing.json", "-o", "y.npy", "--set", "17"], "file not found"),
    (["edit", "m.json", "-o", "y.npy", "--set", "17@a:b"], "START:END"),
])
def test_cli_errors_are_one_clear_line(model_dir, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.json").write_text("{}")
    if "--model" not in args:
        args = args + ["--model", str(model_dir)]
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_broken_model_folders_are_refused_clearly(model_dir, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    shutil.rmtree(broken / "refine")
    with pytest.raises(PipelineError, match="not a complete model folder"):
        Pipeline(broken)

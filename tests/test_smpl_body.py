"""The optional SMPL body: loading .npz models (pickles refused, never run), posing from our joints,
linear blend skinning, and the body in the viewport and the View menu.

The model is a tiny synthetic one built here: a box per bone on the real SMPL joint tree."""

import pickle

import numpy as np
import pytest
from conftest import GUI, TEST_DATA

from core.body import SmplError, SmplModel, fit_betas, pose_from_joints, posed_joints, rest_joints, skin
from core.rotations import quat_to_matrix
from core.skeleton import T2M

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
LEAVES = (10, 11, 15, 22, 23)
HALF_WIDTH = 0.03


def _unit(v):
    return v / np.linalg.norm(v)


def t_pose(lengths=T2M.bone_lengths, rng=None, wobble=0.0):
    """(24, 3) joints of a T-pose (arms out along +-X), bones turned by up to ``wobble`` radians."""
    dirs = T2M.raw_offsets.copy()
    dirs[[16, 18, 20]] = [1, 0, 0]
    dirs[[17, 19, 21]] = [-1, 0, 0]
    joints = np.zeros((24, 3))
    for j in range(1, 24):
        p = SMPL_PARENTS[j]
        d = dirs[j] * lengths[j] if j < 22 else dirs[p] * 0.08
        if rng is not None and wobble:
            d = random_rotation(rng, wobble) @ d
        joints[j] = joints[p] + d
    return joints


def random_rotation(rng, max_angle):
    axis = _unit(rng.standard_normal(3))
    half = rng.uniform(-max_angle, max_angle) / 2
    return quat_to_matrix(np.concatenate([[np.cos(half)], np.sin(half) * axis]))


def body_arrays(joints, n_betas=10, posedirs=True, seed=0):
    """SMPL-like arrays around rest joints (24, 3): a box per bone, rigid to the bone's parent joint,
    and one past each leaf; J_regressor averages the four box corners around each joint."""
    rng = np.random.default_rng(seed)
    verts, faces, owner, regress = [], [], [], np.zeros((24, 0))
    boxes = [(SMPL_PARENTS[j], joints[SMPL_PARENTS[j]], joints[j], j) for j in range(1, 24)]
    boxes += [(j, joints[j], joints[j] + 0.5 * (joints[j] - joints[SMPL_PARENTS[j]]), None) for j in LEAVES]
    quad = [(0, 1, 2), (0, 2, 3)]
    sides = [(0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7), (0, 3, 2, 1), (4, 5, 6, 7)]
    for k, (p, a, b, end) in enumerate(boxes):
        d = _unit(b - a)
        u = _unit(np.cross(d, np.eye(3)[np.argmin(np.abs(d))]))
        w = np.cross(d, u)
        ring = [HALF_WIDTH * (su * u + sw * w) for su, sw in ((1, 1), (-1, 1), (-1, -1), (1, -1))]
        base = 8 * k
        verts += [a + r for r in ring] + [b + r for r in ring]
        faces += [(base + s[i], base + s[j], base + s[m]) for s in sides for i, j, m in quad]
        owner += [p] * 8
        rows = np.zeros((24, 8))
        if end is not None:
            rows[end, 4:] = 0.25
        if p == 0 and end == 3:
            rows[0, :4] = 0.25
        regress = np.concatenate([regress, rows], axis=1)
    v = np.asarray(verts)
    n_v = len(v)
    weights = np.zeros((n_v, 24))
    weights[np.arange(n_v), owner] = 1.0
    shapedirs = rng.normal(0, 0.005, (n_v, 3, n_betas))
    shapedirs[:, :, 0] = 0.1 * v                  # beta 0 scales the body
    arrays = dict(v_template=v, shapedirs=shapedirs, J_regressor=regress,
                  kintree_table=np.array([[4294967295] + SMPL_PARENTS[1:], list(range(24))], np.uint32),
                  weights=weights, f=np.asarray(faces, np.uint32))
    if posedirs:
        arrays["posedirs"] = rng.normal(0, 0.002, (n_v, 3, 23 * 9))
    return arrays


def save_body(path, arrays):
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def body(tmp_path_factory):
    path = tmp_path_factory.mktemp("smpl") / "body.npz"
    return SmplModel.load(save_body(path, body_arrays(t_pose())))


def clip_joints(name="dataset-1_walk_normal_001"):
    from core.formats import bvh as B
    from core.formats import retarget as R

    return R.bvh_to_t2m(B.read(TEST_DATA / "bvh" / f"{name}.bvh"))


def clip_body(x, seed=1, scale=1.0):
    """Arrays of a body with the clip's proportions (times ``scale``) and other rest directions:
    a T-pose with every bone turned by up to 15 degrees; the pelvis's and spine3's children keep
    the clip's layout, turned as one (a rigid body part, as in SMPL)."""
    from core.formats.bvh_export import joints_to_rig

    rng = np.random.default_rng(seed)
    rig = joints_to_rig(x)
    offsets = np.zeros((22, 3))
    offsets[rig.source] = rig.offsets
    lengths = np.linalg.norm(offsets, axis=1)
    joints = t_pose(lengths, rng, np.radians(15))
    for p, kids in ((0, [1, 2, 3]), (9, [12, 13, 14])):
        turn = random_rotation(rng, np.radians(15))
        for c in kids:
            shift = joints[p] + turn @ offsets[c] - joints[c]
            below = [c] + [j for j in range(c + 1, 24) if _ancestor(c, j)]
            joints[below] += shift
    return body_arrays(joints * scale, seed=seed)


def model_offsets(model):
    rest = rest_joints(model)[:22]
    return np.concatenate([np.zeros((1, 3)), rest[1:] - rest[T2M.parents[1:]]])


def _ancestor(a, j):
    while j > 0:
        j = SMPL_PARENTS[j]
        if j == a:
            return True
    return False


# loading

def test_load_keeps_shapes(body):
    assert (body.n_vertices, body.n_joints, body.n_betas) == (28 * 8, 24, 10)
    assert body.parents.tolist() == SMPL_PARENTS
    assert body.faces.dtype == np.int32 and body.faces.shape == (28 * 12, 3)
    assert body.posedirs.shape == (207, 28 * 8 * 3)
    assert np.allclose(rest_joints(body), t_pose(), atol=1e-6)


class Payload:
    """Unpickling this creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def test_pickles_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"
    data = pickle.dumps({"v_template": Payload(marker)})
    for name in ("SMPL_NEUTRAL.pkl", "renamed.npz"):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(SmplError, match="pickle") as err:
            SmplModel.load(tmp_path / name)
        assert "docs/smpl.md" in str(err.value) and "run any code" in str(err.value)
        assert not marker.exists()
    # an .npz whose array is pickled objects inside
    arrays = body_arrays(t_pose())
    arrays["weights"] = np.array([Payload(marker)], dtype=object)
    save_body(tmp_path / "objects.npz", arrays)
    with pytest.raises(SmplError, match="'weights' is stored as pickled"):
        SmplModel.load(tmp_path / "objects.npz")
    assert not marker.exists()
    pickle.loads(data)                              # the payload was live all along
    assert marker.exists()


def test_missing_keys_wrong_shapes_and_non_files(tmp_path):
    good = body_arrays(t_pose(), posedirs=False)
    no_weights = {k: v for k, v in good.items() if k not in ("weights", "f")}
    with pytest.raises(SmplError, match="missing arrays: weights, f"):
        SmplModel.load(save_body(tmp_path / "a.npz", no_weights))
    cases = {
        "weights": (good["weights"][:, :20], "'weights' must have shape"),
        "v_template": (good["v_template"][:, :2], "'v_template' must have shape"),
        "shapedirs": (good["shapedirs"][:, :, 0], "'shapedirs' must have shape"),
        "posedirs": (np.zeros((len(good["v_template"]), 3, 10)), "'posedirs' must have shape"),
        "J_regressor": (good["J_regressor"].T, "'J_regressor' must have shape"),
        "f": (good["f"].astype(np.float32), "'f' must be integer"),
        "kintree_table": (good["kintree_table"][:, :20], "at least 22 joints"),
    }
    for key, (value, message) in cases.items():
        with pytest.raises(SmplError, match=message):
            SmplModel.load(save_body(tmp_path / f"{key}.npz", {**good, key: value}))
    swapped = good["kintree_table"].copy()
    swapped[0, 4] = 2                                # left knee under the right hip
    with pytest.raises(SmplError, match="not the SMPL body joints"):
        SmplModel.load(save_body(tmp_path / "tree.npz", {**good, "kintree_table": swapped}))
    bad_face = good["f"].copy()
    bad_face[0, 0] = 10_000
    with pytest.raises(SmplError, match="outside"):
        SmplModel.load(save_body(tmp_path / "faces.npz", {**good, "f": bad_face}))
    (tmp_path / "notes.npz").write_text("not a zip")
    for path, message in ((tmp_path / "nothing.npz", "no such file"), (tmp_path, "not a file"),
                          (tmp_path / "notes.npz", "not an .npz")):
        with pytest.raises(SmplError, match=message):
            SmplModel.load(path)
    assert issubclass(SmplError, ValueError)


def test_the_docs_conversion_script_reads_an_smpl_style_pickle(tmp_path, monkeypatch):
    """docs/smpl.md's script, run as a user would on a (trusted) SMPL-style pickle: chumpy arrays
    (without chumpy installed) and a sparse J_regressor come out as an .npz the app loads."""
    import re
    import subprocess
    import sys
    import types

    import scipy.sparse
    from conftest import REPO

    chumpy, ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:                              # what matters of chumpy's Ch: the value pickles as "x"
        def __init__(self, x):
            self.x, self._dirty_vars = x, set()

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch.Ch, chumpy.ch = Ch, ch
    monkeypatch.setitem(sys.modules, "chumpy", chumpy)
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch)
    a = body_arrays(t_pose())
    model = {**a, "shapedirs": Ch(a["shapedirs"]), "posedirs": Ch(a["posedirs"]), "bs_style": "lbs",
             "J_regressor": scipy.sparse.csc_matrix(a["J_regressor"]), "J": t_pose()}
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(pickle.dumps(model, protocol=2))
    script = re.search(r"```python\n(# convert_smpl.py.*?)```", (REPO / "docs" / "smpl.md").read_text(),
                       re.S).group(1)
    (tmp_path / "convert_smpl.py").write_text(script)
    subprocess.run([sys.executable, "convert_smpl.py", "SMPL_NEUTRAL.pkl", "SMPL_NEUTRAL.npz"], cwd=tmp_path,
                   check=True, capture_output=True, env={"PATH": "/usr/bin:/bin"})
    loaded = SmplModel.load(tmp_path / "SMPL_NEUTRAL.npz")
    assert np.allclose(loaded.shapedirs, a["shapedirs"]) and np.allclose(rest_joints(loaded), t_pose())
    assert loaded.posedirs is not None and loaded.parents.tolist() == SMPL_PARENTS


# skinning

def test_identity_pose_reproduces_the_template(body):
    rot = np.broadcast_to(np.eye(3), (3, 24, 3, 3))
    verts = skin(body, rot, np.zeros((3, 3)))
    assert verts.dtype == np.float32 and verts.shape == (3, body.n_vertices, 3)
    assert np.abs(verts - body.v_template).max() < 1e-6
    moved = skin(body, rot, np.tile([1.0, 2.0, 3.0], (3, 1)))
    assert np.allclose(moved, body.v_template + [1, 2, 3], atol=1e-5)


def naive_skin(a, rot, trans, betas):
    """Per vertex, with 4x4 matrices: world transforms times the inverse rest transforms."""
    v_shaped = a["v_template"] + np.einsum("vcb,b->vc", a["shapedirs"][:, :, :len(betas)], betas)
    j = a["J_regressor"] @ v_shaped
    feature = np.concatenate([(rot[k] - np.eye(3)).ravel() for k in range(1, 24)])
    v_posed = v_shaped + np.einsum("vcp,p->vc", a["posedirs"], feature)
    world = []
    for k in range(24):
        local = np.eye(4)
        local[:3, :3] = rot[k]
        p = SMPL_PARENTS[k]
        local[:3, 3] = j[k] - (j[p] if p >= 0 else 0)
        world.append(local if p < 0 else world[p] @ local)
    unrest = [w @ np.block([[np.eye(3), -j[k][:, None]], [np.zeros((1, 3)), np.ones((1, 1))]])
              for k, w in enumerate(world)]
    out = np.zeros_like(v_shaped)
    for v in range(len(v_shaped)):
        m = sum(a["weights"][v, k] * unrest[k] for k in range(24))
        out[v] = (m @ np.append(v_posed[v], 1.0))[:3] + trans
    return out


def test_skinning_matches_a_per_vertex_reference(tmp_path):
    rng = np.random.default_rng(7)
    a = body_arrays(t_pose(), seed=3)
    a["weights"] = rng.dirichlet(np.ones(24) * 0.3, len(a["v_template"]))   # blended, not rigid
    model = SmplModel.load(save_body(tmp_path / "b.npz", a))
    rot = np.stack([[random_rotation(rng, 1.0) for _ in range(24)] for _ in range(3)])
    trans = rng.normal(0, 1, (3, 3))
    betas = rng.normal(0, 1, 10)
    verts = skin(model, rot, trans, betas, chunk=2)               # chunks across frames too
    for t in range(3):
        assert np.abs(verts[t] - naive_skin(a, rot[t], trans[t], betas)).max() < 1e-5
    fk = posed_joints(model, rot, trans, betas)
    rigid = SmplModel.load(save_body(tmp_path / "r.npz", {**a, "weights": body_arrays(t_pose(), seed=3)["weights"],
                                                           "posedirs": a["posedirs"] * 0}))
    # with rigid weights and no pose blend shapes, joints regressed from the posed mesh are the FK joints
    regressed = np.einsum("jv,tvc->tjc", a["J_regressor"], skin(rigid, rot, trans, betas))
    assert np.abs(regressed - fk).max() < 1e-5


# posing from our joints

@pytest.mark.parametrize("name", ["dataset-1_walk_normal_001", "dataset-1_bye_happy_001",
                                  "dataset-1_kick_normal_001"])
def test_pose_from_joints_follows_a_clip(tmp_path, name):
    x = clip_joints(name)
    arrays = clip_body(x)
    model = SmplModel.from_arrays(arrays)
    rot, trans = pose_from_joints(model, x)
    assert rot.shape == (len(x), 24, 3, 3) and trans.shape == (len(x), 3)
    assert np.allclose(rot @ np.swapaxes(rot, -1, -2), np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(rot), 1.0)
    error = np.linalg.norm(posed_joints(model, rot, trans)[:, :22] - x, axis=-1)
    # The body's bones are rigid; resampling to 20 fps shortens some of the clip's bones in fast
    # moves (the kick's right shin by 14 mm). The posing adds nothing to that: every joint is off
    # by at most the length changes along its chain, and the error is within 2 cm elsewhere.
    change = np.abs(T2M.measure_offsets(x) - np.linalg.norm(model_offsets(model), axis=-1))
    chain = np.zeros_like(change)
    for j in range(1, 22):
        chain[:, j] = chain[:, T2M.parents[j]] + change[:, j]
    assert (error <= chain + 1e-3).all()
    assert np.percentile(error, 99) < 0.005 and error[chain < 0.005].max() < 0.02, \
        f"{name}: joint error {error.max() * 100:.2f} cm"
    # hands follow the wrists
    assert np.allclose(rot[:, 22:], np.eye(3))
    # the skinned mesh: joints regressed from it sit where the FK joints are (rigid boxes)
    verts = skin(SmplModel.from_arrays({**arrays, "posedirs": arrays["posedirs"] * 0}), rot, trans)
    regressed = np.einsum("jv,tvc->tjc", model.J_regressor.astype(np.float64), verts)
    assert np.abs(regressed - posed_joints(model, rot, trans)).max() < 1e-5


def test_knees_bend_about_their_hinge():
    x = clip_joints("dataset-1_walk_normal_001")
    model = SmplModel.from_arrays(clip_body(x))
    rot, _ = pose_from_joints(model, x)
    for knee, hinge in ((4, [1, 0, 0]), (5, [1, 0, 0])):
        bent = np.degrees(np.arccos(np.clip((np.trace(rot[:, knee], axis1=-2, axis2=-1) - 1) / 2, -1, 1))) > 30
        assert bent.any()
        w, v = np.linalg.eig(rot[bent, knee])
        axis = np.real(v[np.arange(bent.sum()), :, np.argmin(np.abs(w - 1), axis=-1)])
        # the body's rest directions are turned by up to 15 degrees, so the hinge is near X
        assert np.median(np.abs(axis @ hinge)) > 0.8


def test_fit_betas_matches_the_motions_proportions():
    x = clip_joints("dataset-1_walk_normal_001")
    model = SmplModel.from_arrays(clip_body(x, scale=1.1))     # 10 % too big
    rot, trans = pose_from_joints(model, x)
    unfitted = np.linalg.norm(posed_joints(model, rot, trans)[:, :22] - x, axis=-1).max()
    betas = fit_betas(model, x)
    assert betas[0] == pytest.approx((1 / 1.1 - 1) / 0.1, abs=0.1)
    rot, trans = pose_from_joints(model, x, betas)
    fitted = np.linalg.norm(posed_joints(model, rot, trans, betas)[:, :22] - x, axis=-1).max()
    assert fitted < 0.02 < unfitted


def test_bad_inputs_raise_value_errors(body):
    with pytest.raises(ValueError, match=r"\(T, 22, 3\)"):
        pose_from_joints(body, np.zeros((5, 21, 3)))
    with pytest.raises(ValueError, match="NaN"):
        pose_from_joints(body, np.full((5, 22, 3), np.nan))
    with pytest.raises(ValueError, match="rotations"):
        skin(body, np.zeros((5, 22, 3, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="translation"):
        skin(body, np.zeros((5, 24, 3, 3)), np.zeros((4, 3)))
    with pytest.raises(SmplError, match="betas"):
        skin(body, np.zeros((5, 24, 3, 3)), np.zeros((5, 3)), np.zeros(11))


# the viewport and the View menu

def gui(test):
    for mark in GUI:
        test = mark(test)
    return test


@pytest.fixture
def clip_and_body():
    x = clip_joints("dataset-1_walk_normal_001").astype(np.float32)
    model = SmplModel.from_arrays(clip_body(x))
    rot, trans = pose_from_joints(model, x)
    return x, model, skin(model, rot, trans)


@gui
def test_viewport_shows_the_body_per_frame_and_hides_it(qtbot, clip_and_body, tmp_path):
    from pgr2m_studio.viewport import Viewport

    x, model, verts = clip_and_body
    vp = Viewport()
    qtbot.addWidget(vp)
    vp.resize(480, 360)
    vp.show()
    qtbot.waitExposed(vp)
    vp.set_motion(x, 20.0)
    assert not vp.body.visible and vp.body_vertices is None
    floor_y = vp.floor.pos[:, 1].min()
    vp.set_body(verts, model.faces)
    assert vp.body.visible and np.array_equal(vp.body.mesh_data.get_vertices(), verts[0])
    assert vp.floor.pos[:, 1].min() == pytest.approx(verts[..., 1].min())   # the soles stand on it
    vp.set_frame(12)
    assert np.array_equal(vp.body.mesh_data.get_vertices(), verts[12])
    assert np.array_equal(vp.body.mesh_data.get_faces(), model.faces)
    qtbot.wait(50)
    vp.camera.center, vp.camera.scale_factor = tuple(x[12, 0]), 2.5
    image = vp.canvas.render(alpha=False)
    vp.grab().save(str(tmp_path / "smpl_view.png"))
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50              # a shaded body, not flat
    with pytest.raises(ValueError, match="body vertices"):
        vp.set_body(verts[:10], model.faces)
    with pytest.raises(ValueError, match="triangles"):
        vp.set_body(verts, model.faces + 1000)
    vp.set_body(None)
    assert not vp.body.visible and vp.floor.pos[:, 1].min() == pytest.approx(floor_y)
    vp.set_body(verts, model.faces)
    vp.set_motion(x[:20], 20.0)                     # a new motion: the old body goes
    assert not vp.body.visible and vp.body_vertices is None
    vp.set_frame(5)


def fake_motion(joints, seed=0):
    from core import posecodes as pc
    from core.motion import Motion

    steps = len(joints) // 4
    rng = np.random.default_rng(seed)
    ids = np.array([rng.integers(g.first_code, g.first_code + g.n_codes, steps) for g in pc.GROUPS]).T
    return Motion(joints=np.asarray(joints, np.float32)[:4 * steps], features=np.zeros((4 * steps, 263), np.float32),
                  pose_codes=pc.from_indices(ids), residual_codes=np.zeros((6, steps), np.int64),
                  prompt="walk", seed=seed)


@pytest.fixture
def window(qtbot, studio_env, tmp_path):
    from PySide6.QtCore import QSettings

    win = studio_env.MainWindow(load_model=False)
    win.resize(1024, 700)
    win.show()
    qtbot.waitExposed(win)
    yield win
    qtbot.waitUntil(lambda: not win.runner.busy, timeout=30_000)
    win.document.mark_saved(tmp_path / "x.pgr2m")
    win.close()
    win.deleteLater()
    QSettings().clear()


@gui
def test_view_menu_explains_what_is_missing_then_shows_the_body(window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    import pgr2m_studio.body_view as bv

    win = window
    actions = {a.text().replace("&", ""): a for m in win.menuBar().actions() if m.menu() is not None
               for a in m.menu().actions()}
    action = actions["Show SMPL Body…"]
    assert action is win.body_view.action and action.isCheckable() and not action.isChecked()
    explained, warned, offered = [], [], []
    answer = {"choose": False}
    monkeypatch.setattr(bv, "explain_missing", lambda parent, problem=None: explained.append(problem)
                        or answer["choose"])
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: warned.append(text))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (offered.pop(0), ""))
    # no model configured: the explanation, and nothing else happens
    action.trigger()
    assert explained == [None] and not action.isChecked() and win.viewport.body_vertices is None
    # a configured file that has gone: the explanation says so
    win.settings.setValue("smpl/model_path", str(tmp_path / "moved.npz"))
    action.trigger()
    assert "no such file" in explained[-1] and not action.isChecked()
    # the user picks a pickle: refused, never run
    marker = tmp_path / "ran"
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(pickle.dumps(Payload(marker)))
    answer["choose"] = True
    offered.append(str(tmp_path / "SMPL_NEUTRAL.pkl"))
    action.trigger()
    assert "pickle" in warned[-1] and not marker.exists() and not action.isChecked()
    assert win.settings.value("smpl/model_path") == str(tmp_path / "moved.npz")
    # a good file, with a motion shown
    x = clip_joints("dataset-1_walk_normal_001")
    good = save_body(tmp_path / "body.npz", clip_body(x))
    win.document.set_samples([fake_motion(x, 0), fake_motion(x[::-1].copy(), 1)])
    offered.append(str(good))
    action.trigger()
    assert action.isChecked() and win.settings.value("smpl/model_path") == str(good)
    qtbot.waitUntil(lambda: win.viewport.body_vertices is not None, timeout=10_000)
    first = win.viewport.body_vertices
    assert first.shape == (40, win.body_view.model.n_vertices, 3) and win.viewport.body.visible
    win.playback.seek(10)
    assert np.array_equal(win.viewport.body.mesh_data.get_vertices(), first[10])
    # another sample is skinned too; going back takes the cached body at once
    win.document.pick(1)
    assert win.viewport.body_vertices is None
    qtbot.waitUntil(lambda: win.viewport.body_vertices is not None, timeout=10_000)
    win.document.pick(0)
    assert win.viewport.body_vertices is first
    # off, and on again without any dialog
    action.trigger()
    assert not win.viewport.body.visible
    action.trigger()
    assert win.viewport.body_vertices is first and len(explained) == 4
    assert not warned[1:] and not offered

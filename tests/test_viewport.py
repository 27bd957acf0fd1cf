"""The 3D viewport, the playback clock and the transport bar.

Needs a display with OpenGL: run it with `bash scripts/run-tests.sh` (Xvfb + Mesa).
"""

import time

import numpy as np
import pytest
from conftest import GUI
from motion_factory import synth_motion

pytestmark = GUI


@pytest.fixture
def viewport(qtbot):
    from pgr2m_studio.viewport import Viewport

    vp = Viewport()
    qtbot.addWidget(vp)
    vp.resize(320, 240)
    vp.show()
    qtbot.waitExposed(vp)
    return vp


@pytest.fixture
def walk():
    return synth_motion(80, seed=3, speed=0.03).astype(np.float32)


def markers_field(markers, name):
    return markers._data[name]  # vispy keeps the uploaded attributes here


def planted_motion():
    """20 frames: left foot planted and right foot swinging, then the other way round."""
    from pgr2m_studio.viewport import rest_motion

    pose = rest_motion()[0]
    joints = np.repeat(pose[None], 20, axis=0)
    for frames, foot in ((slice(0, 10), [8, 11]), (slice(10, 20), [7, 10])):
        t = np.arange(10, dtype=np.float32)
        joints[frames, foot, 1] += 0.3
        joints[frames, foot, 2] += 0.1 * t[:, None]
    return joints


# viewport

def test_skeleton_is_one_markers_and_one_segment_line(viewport, walk):
    from vispy.scene import visuals

    viewport.set_motion(walk, 20.0)
    assert isinstance(viewport.joints, visuals.Markers)
    assert isinstance(viewport.bones, visuals.Line) and viewport.bones.connect == "segments"
    nodes = viewport.view.scene.children
    # skeleton + ghost: two Markers; bones, ghost bones, floor, trajectory: four Lines
    assert sum(isinstance(n, visuals.Markers) for n in nodes) == 2
    assert sum(isinstance(n, visuals.Line) for n in nodes) == 4
    assert viewport.bones.pos.shape == (2 * 21, 3)
    assert viewport.frame_count == 80


def test_set_frame_moves_rendered_joints(viewport, walk):
    from pgr2m_studio.viewport import bone_segments

    viewport.set_motion(walk, 20.0)
    first = viewport.canvas.render(alpha=False)
    assert np.array_equal(first, viewport.canvas.render(alpha=False))  # deterministic
    viewport.set_frame(60)
    later = viewport.canvas.render(alpha=False)
    assert (np.abs(first.astype(int) - later).sum(-1) > 30).sum() > 50
    np.testing.assert_allclose(viewport.bones.pos, bone_segments(walk[60]))
    np.testing.assert_allclose(markers_field(viewport.joints, "a_position"), walk[60])
    viewport.set_frame(1000)  # clamped
    assert viewport.frame == 79


def test_single_frame_and_bad_shapes(viewport, walk):
    viewport.set_motion(walk[:1], 20.0)
    assert viewport.frame_count == 1 and not viewport.trajectory.visible
    viewport.set_frame(5)
    assert viewport.frame == 0
    with pytest.raises(ValueError):
        viewport.set_motion(walk[:, :21], 20.0)


def test_ghost_on_off(viewport, walk):
    viewport.set_motion(walk, 20.0)
    assert not viewport.ghost_joints.visible and not viewport.ghost_bones.visible
    plain = viewport.canvas.render(alpha=False)
    ghost = walk.copy()
    ghost[..., 0] += 0.5
    viewport.set_ghost(ghost[:30])
    viewport.set_frame(50)  # past the ghost's end: it holds its last frame
    assert viewport.ghost_joints.visible and viewport.ghost_bones.visible
    np.testing.assert_allclose(markers_field(viewport.ghost_joints, "a_position"), ghost[29])
    assert markers_field(viewport.ghost_joints, "a_bg_color")[:, 3].max() < 1.0  # translucent
    viewport.set_frame(0)
    assert not np.array_equal(plain, viewport.canvas.render(alpha=False))
    viewport.set_ghost(None)
    assert not viewport.ghost_joints.visible and viewport.ghost is None
    assert np.array_equal(plain, viewport.canvas.render(alpha=False))


def test_follow_camera_tracks_pelvis(viewport, walk, qtbot):
    viewport.set_motion(walk, 20.0)
    with qtbot.waitSignal(viewport.follow_changed):
        viewport.set_follow(True)
    for i in (0, 40, 79):
        viewport.set_frame(i)
        centre = np.asarray(viewport.camera.center)
        np.testing.assert_allclose(centre[[0, 2]], walk[i, 0, [0, 2]], atol=1e-5)
    viewport.set_follow(False)
    viewport.set_frame(10)
    np.testing.assert_allclose(np.asarray(viewport.camera.center)[[0, 2]], walk[79, 0, [0, 2]], atol=1e-5)


def test_frame_all_fits_motion_and_stops_following(viewport, walk):
    viewport.set_motion(walk, 20.0)
    viewport.set_follow(True)
    viewport.frame_all()
    assert not viewport.follow
    lo, hi = walk.reshape(-1, 3).min(0), walk.reshape(-1, 3).max(0)
    np.testing.assert_allclose(viewport.camera.center, (lo + hi) / 2, atol=1e-5)
    assert viewport.camera.scale_factor >= np.linalg.norm(hi - lo) * 0.8


def test_contacts_colour_feet(viewport):
    from pgr2m_studio.viewport import CONTACT

    joints = planted_motion()
    viewport.set_motion(joints, 20.0)
    left, right = [7, 10], [8, 11]
    assert viewport.contacts.shape == (20, 4)
    for frame, down, up in ((5, left, right), (15, right, left)):
        viewport.set_frame(frame)
        face = markers_field(viewport.joints, "a_bg_color")
        np.testing.assert_allclose(face[down], [CONTACT, CONTACT])
        assert not any(np.allclose(c, CONTACT, atol=0.05) for c in face[up])
    size = markers_field(viewport.joints, "a_size")
    assert size[right].min() > size[left].max()  # planted feet drawn larger too


def test_left_and_right_limbs_differ(viewport):
    from core.skeleton import T2M

    face = markers_field(viewport.joints, "a_bg_color")
    assert not np.allclose(face[T2M.index("left_elbow")], face[T2M.index("right_elbow")])


# playback

@pytest.fixture
def playback(qtbot):
    from pgr2m_studio.playback import Playback

    pb = Playback(100, 50.0)
    yield pb
    pb.pause()


def test_play_follows_real_time_and_pause_stops(playback, qtbot):
    start = time.perf_counter()
    playback.play()
    assert playback.playing
    qtbot.waitUntil(lambda: playback.frame >= 10, timeout=3000)
    elapsed = time.perf_counter() - start
    assert playback.frame <= elapsed * playback.fps + 1
    playback.pause()
    frozen = playback.frame
    qtbot.wait(120)
    assert not playback.playing and playback.frame == frozen


def test_slow_redraw_drops_frames(playback, qtbot):
    seen = []

    def slow(frame):  # a redraw of 60 ms at 50 fps: 3 frames each
        seen.append(frame)
        time.sleep(0.06)

    playback.frame_changed.connect(slow)
    start = time.perf_counter()
    playback.play()
    qtbot.waitUntil(lambda: len(seen) >= 5, timeout=3000)
    elapsed = time.perf_counter() - start
    playback.pause()
    assert max(np.diff(seen)) >= 2
    assert seen[-1] >= 0.6 * (elapsed - 0.06) * playback.fps


def test_end_stops_or_loops(playback, qtbot):
    playback.set_length(6, 100.0)
    with qtbot.waitSignal(playback.state_changed, timeout=2000):
        playback.play()
    qtbot.waitUntil(lambda: not playback.playing, timeout=2000)
    assert playback.frame == 5
    seen = []
    playback.frame_changed.connect(seen.append)
    playback.loop = True
    playback.play()  # at the end: starts again from 0
    qtbot.waitUntil(lambda: sum(np.diff(seen) < 0) >= 2, timeout=3000)
    assert playback.playing and max(seen) == 5 and min(seen) == 0


def test_step_and_seek_clamp(playback):
    playback.seek(-5)
    assert playback.frame == 0
    playback.seek(1000)
    assert playback.frame == 99
    playback.step(1)
    assert playback.frame == 99
    playback.step(-3)
    assert playback.frame == 96
    playback.play()
    playback.step(-200)
    assert playback.frame == 0 and not playback.playing
    playback.set_length(10)
    playback.seek(50)
    assert playback.frame == 9 and playback.fps == 50.0


# transport

def test_transport_drives_playback(qtbot):
    from PySide6.QtCore import Qt

    from pgr2m_studio.playback import Playback
    from pgr2m_studio.transport import TransportBar

    pb = Playback(196, 20.0)
    bar = TransportBar(pb)
    qtbot.addWidget(bar)
    assert bar.slider.maximum() == 195
    bar.slider.setValue(12)
    assert pb.frame == 12 and bar.label.text() == "frame 12 / 196 · 0.60 s"
    pb.seek(40)
    assert bar.slider.value() == 40 and bar.label.text() == "frame 40 / 196 · 2.00 s"
    qtbot.mouseClick(bar.forward_button, Qt.LeftButton)
    assert pb.frame == 41
    qtbot.mouseClick(bar.back_button, Qt.LeftButton)
    qtbot.mouseClick(bar.back_button, Qt.LeftButton)
    assert pb.frame == 39
    qtbot.mouseClick(bar.loop_button, Qt.LeftButton)
    assert pb.loop
    qtbot.mouseClick(bar.play_button, Qt.LeftButton)
    assert pb.playing
    qtbot.waitUntil(lambda: bar.slider.value() > 40, timeout=3000)
    qtbot.mouseClick(bar.play_button, Qt.LeftButton)
    assert not pb.playing
    with qtbot.waitSignal(bar.follow_toggled) as blocker:
        qtbot.mouseClick(bar.follow_button, Qt.LeftButton)
    assert blocker.args == [True]


def test_playback_drives_viewport(viewport, walk, qtbot):
    from pgr2m_studio.playback import Playback

    viewport.set_motion(walk, 20.0)
    pb = Playback(viewport.frame_count, 200.0)
    pb.frame_changed.connect(viewport.set_frame)
    pb.play()
    qtbot.waitUntil(lambda: not pb.playing, timeout=3000)
    assert viewport.frame == 79

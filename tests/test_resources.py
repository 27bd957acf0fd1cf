"""The model files shipped in resources/ load and behave as their model card says."""

from pathlib import Path

import numpy as np
import torch

from core import posecodes
from core.eval.evaluator import TextMotionEvaluator
from core.eval.metrics import mpjpe
from core.features import extract_features, recover_joints
from core.formats import bvh
from core.formats.retarget import BUILTIN_MAPS, bvh_to_t2m
from core.model.io import load_tokenizer

MODEL = Path(__file__).resolve().parents[1] / "resources" / "models" / "bandai-namco-small"


def test_model_card_states_the_licence():
    card = (MODEL / "MODEL_CARD.md").read_text()
    assert "CC BY-NC 4.0" in card and "non-commercial" in card and "arXiv:2306.08861" in card


def test_shipped_tokenizer_reconstructs_a_real_clip(test_data):
    model, mean, std = load_tokenizer(MODEL / "tokenizer")
    joints = bvh_to_t2m(bvh.read(test_data / "bvh" / "dataset-1_walk_normal_001.bvh"), BUILTIN_MAPS["bandai-namco"])
    feats = extract_features(joints)[:36]
    gt = recover_joints(feats)
    codes = posecodes.parse(gt)
    with torch.no_grad():
        pose, idx = model.encode(torch.from_numpy((feats - mean) / std).float()[None],
                                 torch.from_numpy(codes).float()[None])
        errs = {}
        for k in (0, 6):
            out = model.decode(pose, idx, n_stages=k)[0].numpy() * std + mean
            errs[k] = mpjpe(recover_joints(out), gt)
    assert errs[6] < 0.08 and errs[0] < 0.12 and errs[6] < errs[0]
    assert idx.shape == (1, 6, 9) and (idx >= 0).all()


def test_shipped_evaluator_prefers_the_matching_caption(test_data):
    ev = TextMotionEvaluator.load(MODEL / "evaluator")
    mean, std = np.load(MODEL / "evaluator" / "mean.npy"), np.load(MODEL / "evaluator" / "std.npy")
    joints = bvh_to_t2m(bvh.read(test_data / "bvh" / "dataset-1_walk_normal_001.bvh"), BUILTIN_MAPS["bandai-namco"])
    feats = torch.from_numpy((extract_features(joints) - mean) / std).float()[None]
    with torch.no_grad():
        m = ev.embed_motion(feats, torch.tensor([feats.shape[1]]))
        t = ev.encode_texts(["a person walks forward", "a person bows", "a person waves the right hand"])
    d = torch.cdist(t, m)[:, 0]
    assert int(d.argmin()) == 0


def test_the_built_in_model_waves_the_hand_it_is_asked_to(tmp_path):
    """The default model offline: right-hand waving raises the right wrist, not the left."""
    from core.cli import main as cli
    from core.pipeline import Pipeline

    pipe = Pipeline()
    for side, (raised, other) in {"right": (21, 20), "left": (20, 21)}.items():
        shoulder = {21: 17, 20: 16}
        motions = pipe.generate(f"a person waves the {side} hand happily", n_samples=4, seed=0)
        for m in motions:
            up = (m.joints[:, raised, 1] > m.joints[:, shoulder[raised], 1]).mean()
            down = (m.joints[:, other, 1] > m.joints[:, shoulder[other], 1]).mean()
            assert up > 0.5 and down < 0.1, (side, up, down)
    out = tmp_path / "out.bvh"
    assert cli(["generate", "a person waves the right hand happily", "-o", str(out), "--seed", "1"]) == 0
    assert bvh.read(out).n_frames > 40

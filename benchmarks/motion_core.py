"""Figures for the motion core on real clips: feature round trip, FK(IK) error, bone lengths.

    python benchmarks/motion_core.py /tmp/bn/Bandai-Namco-Research-Motiondataset-1/data [--limit N]

Prints joint errors in millimetres (max and mean over all frames and joints).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.features import canonicalize, extract_features, recover_joints  # noqa: E402
from core.formats import bvh  # noqa: E402
from core.formats.retarget import BUILTIN_MAPS, bvh_to_t2m  # noqa: E402
from core.skeleton import T2M, forward_kinematics, inverse_kinematics  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="+")
    ap.add_argument("--limit", type=int, default=0, help="clips per folder (0: all)")
    args = ap.parse_args()
    files = []
    for folder in args.folder:
        found = sorted(Path(folder).glob("*.bvh"))
        files += found[: args.limit] if args.limit else found
    feat_err, ik_err, ik_err_mean_len, lengths = [], [], [], []
    t = {"read+retarget": 0.0, "features": 0.0, "recover": 0.0, "ik+fk": 0.0}
    frames = 0
    for f in files:
        t0 = time.perf_counter()
        j = bvh_to_t2m(bvh.read(f), BUILTIN_MAPS["bandai-namco"])
        t1 = time.perf_counter()
        feats = extract_features(j)
        t2 = time.perf_counter()
        rec = recover_joints(feats)
        t3 = time.perf_counter()
        feat_err.append(np.linalg.norm(rec - canonicalize(j)[:-1], axis=-1).ravel())
        q, root, L = inverse_kinematics(j)
        ik_err.append(np.linalg.norm(forward_kinematics(T2M, q, root, L) - j, axis=-1).ravel())
        ik_err_mean_len.append(np.linalg.norm(forward_kinematics(T2M, q, root, L.mean(0)) - j, axis=-1).ravel())
        t4 = time.perf_counter()
        lengths.append(L)
        frames += len(j)
        for k, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            t[k] += dt
    def mm(e):
        return f"max {np.concatenate(e).max() * 1000:.4f} mm, mean {np.concatenate(e).mean() * 1000:.5f} mm"

    print(f"{len(files)} clips, {frames} frames at 20 fps")
    print(f"recover_joints(extract_features(j)) vs j:   {mm(feat_err)}")
    print(f"FK(IK(j)) with per-frame bone lengths:       {mm(ik_err)}")
    print(f"FK(IK(j)) with each clip's mean bone lengths: {mm(ik_err_mean_len)}")
    print("time per clip: " + ", ".join(f"{k} {v / len(files) * 1000:.1f} ms" for k, v in t.items()))
    med = np.median(np.concatenate(lengths), axis=0)
    print("median bone lengths (m):", np.array2string(med, precision=3, separator=", ", max_line_width=200))


if __name__ == "__main__":
    main()

"""`pgr2m export`: write a motion (a project sample, a codes JSON, joints .npy or a BVH) as
BVH, FBX, glTF (.glb), joints or HumanML3D features .npy, or a pose-code JSON."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FPS = 20.0


@dataclass
class JointsMotion:
    """A motion known only by its joints (an .npy or a BVH): enough for the rig formats."""

    joints: np.ndarray
    fps: float = FPS

    @property
    def n_frames(self) -> int:
        return len(self.joints)

    @property
    def features(self) -> np.ndarray:
        from core.features import extract_features

        return extract_features(self.joints)


def _frames(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        a, b = text.split(":")
        return int(a), int(b)
    except ValueError:
        raise ValueError(f"--frames must be START:END in frames, e.g. 0:80, got {text!r}") from None


def _read(args, fmt: str):
    """The motion to export: a Motion when the input holds codes (or the format needs them)."""
    from core.formats.motion_files import MotionFileError

    path = Path(args.input)
    ext = path.suffix.lower()
    if not path.is_file():
        raise MotionFileError(f"{path}: file not found")
    if ext == ".pgr2m":
        from core.project import load_project

        doc = load_project(path)
        if not doc.samples:
            raise MotionFileError(f"{path}: the project holds no motion")
        i = doc.current if args.sample is None else args.sample
        if not 0 <= i < len(doc.samples):
            raise MotionFileError(f"{path}: --sample must be 0..{len(doc.samples) - 1}, got {i}")
        return doc.samples[i]
    if ext == ".json" or fmt == "json":
        from core.cli_motion import _pipeline
        from core.formats.motion_files import load_motion

        return load_motion(path, _pipeline(args))
    if ext in (".npy", ".bvh"):
        from core.formats.motion_files import read_joints

        return JointsMotion(np.asarray(read_joints(path), np.float64))
    raise MotionFileError(f"{path.name}: cannot read {ext or 'a file without extension'}; "
                          "use a .pgr2m project, a .json of pose codes, joints .npy or a .bvh")


def cmd_export(args) -> int:
    from core.formats.motion_files import format_for, save_motion

    if args.fps is not None and not 0 < args.fps <= 1000:
        raise ValueError(f"--fps must be a frame rate in (0, 1000], got {args.fps}")
    fmt = format_for(args.output, args.format)
    out = Path(args.output)
    if not out.resolve().parent.is_dir():
        raise ValueError(f"{out}: folder {out.resolve().parent} does not exist")
    motion = _read(args, fmt)
    frames = _frames(args.frames)
    save_motion(out, motion, fps=args.fps, scale=args.scale, frames=frames, fmt=fmt)
    n = motion.n_frames if frames is None else frames[1] - frames[0]
    print(f"{args.input} -> {out} ({fmt}, {n} frames at {motion.fps:g} fps"
          f"{f', resampled to {args.fps:g} fps' if args.fps else ''})", file=sys.stderr)
    return 0


def register(sub) -> None:
    s = sub.add_parser("export", help="write a motion as BVH, FBX, glTF (.glb), .npy or pose-code JSON")
    s.add_argument("input", help="a .pgr2m project, a .json of pose codes, joints .npy (T, 22, 3) or a .bvh")
    s.add_argument("-o", "--output", required=True, help="file to write; the extension picks the format")
    s.add_argument("--format", choices=("bvh", "fbx", "glb", "npy", "features", "json"),
                   help="override the extension (features = HumanML3D 263-d .npy)")
    s.add_argument("--fps", type=float, help="resample to this frame rate (bvh, fbx, glb; e.g. 30, 60)")
    s.add_argument("--scale", type=float,
                   help="length units per metre (bvh default 1 = metres, fbx default 100 = centimetres)")
    s.add_argument("--frames", metavar="START:END", help="export only these frames")
    s.add_argument("--sample", type=int, help="which sample of a project (default: the picked one)")
    s.add_argument("--model", help="model folder to decode a pose-code JSON (default: the built-in model)")
    s.add_argument("--device", help="cpu | cuda")
    s.set_defaults(func=cmd_export)

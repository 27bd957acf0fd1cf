"""Turn a folder of BVH files plus labels into a HumanML3D-format dataset folder.

Each clip is retargeted to the 22-joint layout at 20 fps in metres, converted to the
263-d features and parsed into pose codes in worker processes; captions come from the
clip's labels through a template file. A failing clip is reported and skipped, the rest
go on. Outputs are written atomically and finished clips are kept, so an interrupted
import resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from core import atomic, posecodes
from core.data.captions import Caption, CaptionError, Templates, tokenize
from core.data.humanml3d import CODES_META
from core.features import extract_features, mean_std, recover_joints
from core.formats import bvh
from core.formats.retarget import BUILTIN_MAPS, bvh_to_t2m

Progress = Callable[[int, int, str], None]


@dataclass
class ImportReport:
    out: Path
    converted: list[str] = field(default_factory=list)
    skipped_existing: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)   # (file, reason)
    notes: list[str] = field(default_factory=list)                  # worth knowing, not failures
    frames: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"{len(self.converted) + len(self.skipped_existing)} clips in {self.out} "
                 f"({len(self.converted)} converted now, {len(self.skipped_existing)} already there), "
                 f"{self.frames} frames at 20 fps, {self.seconds:.1f} s"]
        lines += [f"note: {n}" for n in self.notes]
        if self.failures:
            lines.append(f"{len(self.failures)} file(s) failed:")
            lines += [f"  {f}: {why}" for f, why in self.failures]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"converted": len(self.converted) + len(self.skipped_existing), "frames": self.frames,
                "seconds": round(self.seconds, 2), "failures": [{"file": f, "reason": r} for f, r in self.failures],
                "notes": self.notes}


def clip_id_for(path: Path) -> str:
    """Dataset id from a file name: letters, digits, '-', '_' only."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in path.stem)
    return stem or "clip"


def _convert(job: tuple) -> tuple[str, str, int, str | None]:
    """Worker: one BVH file -> joints, features, codes on disk. Returns (file, id, frames, error)."""
    src, clip_id, out, joint_map, scale, fps = job
    try:
        if isinstance(joint_map, str):
            joint_map = BUILTIN_MAPS[joint_map]
        motion = bvh.read(src)
        joints = bvh_to_t2m(motion, joint_map, target_fps=fps, scale=scale, source=str(src))
        if len(joints) < 3:
            raise ValueError(f"only {len(joints)} frame(s) at {fps:g} fps; a clip needs at least 3")
        features = extract_features(joints)
        new_joints = recover_joints(features).astype(np.float32)
        codes = posecodes.parse(new_joints)
        out = Path(out)
        atomic.save_npy(out / "new_joints" / f"{clip_id}.npy", new_joints)
        atomic.save_npy(out / "codes" / f"{clip_id}.npy", codes)
        # the features file last: its presence marks the clip as done
        atomic.save_npy(out / "new_joint_vecs" / f"{clip_id}.npy", features)
        return str(src), clip_id, len(features), None
    except Exception as exc:  # noqa: BLE001 - every failure is reported per file
        return str(src), clip_id, 0, f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)


def assign_splits(ids_by_group: dict[str, list[str]], fractions=(0.8, 0.1, 0.1)) -> dict[str, list[str]]:
    """A fixed split: within each group (e.g. a content label) clips are ordered by a hash of
    their id and cut by the fractions, so every group reaches every split and adding clips
    never moves existing ones between train and test by chance of ordering."""
    out = {"train": [], "val": [], "test": []}
    for group in sorted(ids_by_group):
        ids = sorted(ids_by_group[group], key=lambda i: hashlib.sha1(i.encode()).hexdigest())
        n = len(ids)
        n_test = int(round(n * fractions[2])) if n >= 3 else 0
        n_val = int(round(n * fractions[1])) if n >= 3 else 0
        out["test"] += ids[:n_test]
        out["val"] += ids[n_test:n_test + n_val]
        out["train"] += ids[n_test + n_val:]
    return {k: sorted(v) for k, v in out.items()}


def _captions_for(clip_id: str, labels: dict, templates: Templates | None) -> list[Caption]:
    given = labels.get("text")
    if given:
        texts = [given] if isinstance(given, str) else list(given)
        return [Caption(t.strip(), tokenize(t)) for t in texts if isinstance(t, str) and t.strip()]
    if templates is None:
        raise CaptionError(f"clip {clip_id!r}: no 'text' label and no template file to write captions from")
    return templates.captions({k: str(v) for k, v in labels.items()}, clip_id)


def read_sidecar_labels(bvh_path: Path) -> dict | None:
    side = bvh_path.with_suffix(".json")
    if not side.is_file():
        return None
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CaptionError(f"{side}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CaptionError(f"{side}: expected a JSON object of labels")
    return data


def import_bvh_folder(src: str | Path, out: str | Path, *, labels: dict[str, dict] | None = None,
                      templates: Templates | None = None, joint_map=None, scale: float = 0.01,
                      fps: float = 20.0, group_by: str | None = None, fractions=(0.8, 0.1, 0.1),
                      workers: int | None = None, files: list[Path] | None = None,
                      progress: Progress | None = None, meta: dict | None = None) -> ImportReport:
    """Import every ``*.bvh`` under ``src`` (or the given ``files``) into ``out``.

    labels: clip id -> {label: value}; otherwise each BVH's sidecar ``.json`` is read.
    A ``text`` label (a string or list) is used as captions directly.
    joint_map: a built-in map name, a map dict, or None to recognise the rig per file.
    group_by: the label that stratifies the train/val/test split (e.g. "content").
    """
    t0 = time.perf_counter()
    src, out = Path(src), Path(out)
    files = sorted(files if files is not None else src.rglob("*.bvh"))
    report = ImportReport(out)
    if not files:
        raise FileNotFoundError(f"{src}: no .bvh files found")
    for sub in ("new_joint_vecs", "new_joints", "texts", "codes"):
        (out / sub).mkdir(parents=True, exist_ok=True)

    # labels and captions first: a clip without usable text is not converted at all
    jobs, captions, groups = [], {}, {}
    seen: dict[str, Path] = {}
    for path in files:
        clip_id = clip_id_for(path)
        if clip_id in seen:
            report.failures.append((str(path), f"same clip id {clip_id!r} as {seen[clip_id]}; rename one"))
            continue
        seen[clip_id] = path
        try:
            clip_labels = (labels or {}).get(clip_id)
            if clip_labels is None:
                clip_labels = read_sidecar_labels(path) or {}
            caps = _captions_for(clip_id, clip_labels, templates)
            if not caps:
                raise CaptionError(f"clip {clip_id!r}: no caption could be written")
        except CaptionError as exc:
            report.failures.append((str(path), str(exc)))
            continue
        captions[clip_id] = caps
        groups[clip_id] = str(clip_labels.get(group_by, "")) if group_by else ""
        if (out / "new_joint_vecs" / f"{clip_id}.npy").is_file():
            report.skipped_existing.append(clip_id)
        else:
            jobs.append((path, clip_id, str(out), joint_map, scale, fps))

    done = len(report.skipped_existing)
    total = done + len(jobs)
    if progress:
        progress(done, total, "converting")
    workers = workers or min(len(jobs), os.cpu_count() or 1) or 1
    ok_ids = set(report.skipped_existing)
    if jobs:
        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) if workers > 1 else None
        results = pool.map(_convert, jobs, chunksize=max(1, min(32, len(jobs) // (workers * 8)))) \
            if pool else map(_convert, jobs)
        try:
            for file, clip_id, n, err in results:
                done += 1
                if err:
                    report.failures.append((file, err))
                else:
                    report.converted.append(clip_id)
                    ok_ids.add(clip_id)
                if progress:
                    progress(done, total, clip_id)
        finally:
            if pool:
                pool.shutdown(cancel_futures=True)

    # texts, splits and statistics for the clips that made it
    feats = {}
    for clip_id in sorted(ok_ids):
        atomic.write_text(out / "texts" / f"{clip_id}.txt", "\n".join(c.to_line() for c in captions[clip_id]) + "\n")
        feats[clip_id] = atomic.load_npy(out / "new_joint_vecs" / f"{clip_id}.npy")
        report.frames += len(feats[clip_id])
    by_group: dict[str, list[str]] = {}
    for clip_id in ok_ids:
        by_group.setdefault(groups[clip_id], []).append(clip_id)
    splits = assign_splits(by_group, fractions)
    splits["train_val"] = sorted(splits["train"] + splits["val"])
    splits["all"] = sorted(ok_ids)
    for name, ids in splits.items():
        atomic.write_text(out / f"{name}.txt", "".join(f"{i}\n" for i in ids))
    if ok_ids:
        stat_ids = splits["train"] or splits["all"]
        mean, std = mean_std([feats[i] for i in stat_ids])
        atomic.save_npy(out / "Mean.npy", mean)
        atomic.save_npy(out / "Std.npy", std)
    atomic.write_text(out / "codes" / "_parser.json", json.dumps(CODES_META, indent=1))
    report.seconds = time.perf_counter() - t0
    info = {"format": "HumanML3D", "skeleton": "t2m", "fps": fps, "feature_dim": 263,
            "clips": len(ok_ids), "frames": report.frames, "mean_std_from": "train split"}
    info.update(meta or {})
    atomic.write_text(out / "dataset.json", json.dumps(info, indent=1))
    atomic.write_text(out / "import_report.json", json.dumps(report.to_json(), indent=1))
    return report

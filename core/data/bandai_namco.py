"""Recipe: the Bandai Namco Research motion dataset -> a HumanML3D-format folder.

Both archives are unpacked into a temporary folder, each clip's content and style labels
are read from its sidecar JSON (indices into cfg/*_label.txt), captions are written from
them with several paraphrases (templates/bandai_namco.json), and the split is fixed per
take, stratified by content.
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
from pathlib import Path

from core import atomic
from core.data.captions import Templates
from core.data.importer import ImportReport, clip_id_for, import_bvh_folder

TEMPLATES = Path(__file__).with_name("templates") / "bandai_namco.json"
ARCHIVES = ("bandai-namco-motion-1.tar.xz", "bandai-namco-motion-2.tar.xz")
ATTRIBUTION = ("Trained on the Bandai-Namco-Research-Motiondataset (Bandai Namco Research Inc., CC BY-NC 4.0), "
               "converted to the HumanML3D 22-joint format.")
LICENCE_NOTE = f"""# Licence of this converted data

{ATTRIBUTION}

Source: github.com/BandaiNamcoResearchInc/Bandai-Namco-Research-Motiondataset
Licence: Creative Commons Attribution-NonCommercial 4.0 (CC BY-NC 4.0). Non-commercial use only;
this folder and any model trained on it carry the same restriction.
Paper: Kobayashi et al., "Motion Capture Dataset for Practical Use of AI-based Motion Editing and
Stylization", arXiv:2306.08861 (2023).

Changes made: joints mapped to the HumanML3D 22-joint layout (spine3 interpolated between Chest
and Neck), resampled from 30 to 20 fps, centimetres to metres, canonicalised (floor, origin,
facing +Z), converted to 263-d HumanML3D features and pose codes; captions written from the
content and style labels.
"""


def default_archive_dir() -> Path:
    env = os.environ.get("PGR2M_BANDAI_NAMCO")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bandai-namco"


def find_archives(folder: str | Path | None = None) -> list[Path]:
    folder = Path(folder) if folder else default_archive_dir()
    found = [folder / a for a in ARCHIVES if (folder / a).is_file()]
    if not found:
        raise FileNotFoundError(f"{folder}: neither {ARCHIVES[0]} nor {ARCHIVES[1]} found; "
                                "pass the folder that holds the Bandai Namco archives")
    return found


def _extract(archive: Path, dest: Path) -> Path:
    with tarfile.open(archive, "r:xz") as tar:
        tar.extractall(dest, filter="data")   # refuses absolute paths, links out, devices
    roots = [p for p in dest.iterdir() if (p / "data").is_dir()]
    if len(roots) != 1:
        raise FileNotFoundError(f"{archive}: expected one dataset folder with data/ inside, found {len(roots)}")
    return roots[0]


def read_labels(dataset_dir: Path) -> tuple[dict[str, dict], list[tuple[str, str]]]:
    """clip id -> {"content", "style", "take"} from the sidecar JSONs and cfg label lists."""
    cfg = {}
    for key in ("content", "style"):
        path = dataset_dir / "cfg" / f"{key}_label.txt"
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        # entries read "dataset-2_walk": keep the label after the first underscore
        cfg[key] = [n.split("_", 1)[1] if "_" in n else n for n in names]
    labels, problems = {}, []
    for side in sorted((dataset_dir / "data").glob("*.json")):
        if not side.with_suffix(".bvh").is_file():
            problems.append((str(side), "labels without a BVH file (clip missing from the release)"))
            continue
        try:
            raw = json.loads(side.read_text(encoding="utf-8"))
            entry = {key: cfg[key][int(raw[key])] for key in ("content", "style")}
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            problems.append((str(side), f"unreadable labels ({exc})"))
            continue
        entry["take"] = side.stem.rsplit("_", 1)[-1]
        labels[clip_id_for(side)] = entry
    return labels, problems


def prepare(out: str | Path, archive_dir: str | Path | None = None, *, workers: int | None = None,
            progress=None, templates: Templates | None = None) -> ImportReport:
    """Convert the whole corpus into ``out`` (resumable: finished clips are kept)."""
    out = Path(out)
    archives = find_archives(archive_dir)
    templates = templates or Templates.load(TEMPLATES)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pgr2m-bn-", dir=out) as tmp:
        files, labels, problems = [], {}, []
        for archive in archives:
            if progress:
                progress(0, 0, f"unpacking {archive.name}")
            root = _extract(archive, Path(tmp) / archive.name.split(".")[0])   # one folder per archive
            clip_labels, clip_problems = read_labels(root)
            labels.update(clip_labels)
            problems += [f"{archive.name}: {Path(f).relative_to(root)}: {why}" for f, why in clip_problems]
            files += [p for p in (root / "data").glob("*.bvh") if clip_id_for(p) in clip_labels]
        report = import_bvh_folder(
            root, out, files=files, labels=labels, templates=templates, joint_map="bandai-namco",
            scale=0.01, group_by="content", workers=workers, progress=progress,
            meta={"source": "Bandai-Namco-Research-Motiondataset", "licence": "CC BY-NC 4.0",
                  "attribution": ATTRIBUTION, "split": "per take, stratified by content (80/10/10)"})
        report.notes += problems
    atomic.write_text(out / "LICENSE.md", LICENCE_NOTE)
    labels_out = {k: labels[k] for k in sorted(labels) if (out / "new_joint_vecs" / f"{k}.npy").is_file()}
    atomic.write_text(out / "labels.json", json.dumps(labels_out, indent=0))
    atomic.write_text(out / "import_report.json", json.dumps(report.to_json(), indent=1))
    return report

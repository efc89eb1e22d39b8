"""Train the embedded default models and write them into fusion/models/.

Usage::

    python benchmarks/train_defaults.py nr     # CLIVE share (human crowd MOS)
    python benchmarks/train_defaults.py fr     # KADID-calibrated synthetic set (no FR human data)
    python benchmarks/train_defaults.py nr-anchors # refit the NR stacker with anchors
    python benchmarks/train_defaults.py fr-anchors # refit the FR stacker with anchors

No-reference: the CLIVE share of ../shared/data (696 images), split by content into 80 %
training and 20 % held out. Full-reference: no full-reference human-rated database is in
../shared/data, so the model is fitted to the KADID-calibrated synthetic set of
:mod:`fusion.training.calibrated` — KADID-10k's 25 distortions at levels 1–7 of 44
references (24 Kodak, 4 scikit-image, the 16 best-rated CLIVE photographs), each with the
KADID-10k mean rating of its (type, level) as target, plus each reference against itself
(target 100) — with the monotone stacker and the handcrafted features alone (run
``benchmarks/fr_calibrated.py`` first: it builds the set and its feature cache, and
measures the alternatives); its metadata says so. The ``*-anchors`` modes refit the
shipped bundle's stacker and interval on the same training part plus the anchor images of
the 24 Kodak photographs (:mod:`fusion.training.anchors`), keeping its backbones. Each run
prints the held-out report that goes into the bundle's metadata.json.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fusion.datasets import Dataset, read_manifest  # noqa: E402
from fusion.training import train_fusion  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
WORK = ROOT / "benchmarks" / "results"


def severity_dataset() -> Dataset:
    """The KADID-calibrated synthetic set (built by benchmarks/fr_calibrated.py)."""
    from fusion.training.calibrated import calibrated_synthetic, reference_groups

    work = WORK / "fr_calibrated"
    return calibrated_synthetic(reference_groups(SHARED, work), work / "synthetic",
                                SHARED / "score_files" / "kadid10k" / "names_with_mos.txt",
                                jobs=2, progress=True)


def refit_with_anchors(mode: str) -> int:
    """Refit the shipped bundle's stacker with anchors (backbones unchanged)."""
    import tempfile

    import numpy as np

    from fusion.training import refit_stacker
    from fusion.training.anchors import anchor_dataset
    from fusion.training.fused import heldout_split

    photos = sorted((SHARED / "pristine" / "kodak").glob("*.png"))
    bundle = ROOT / "fusion" / "models" / f"default_{mode}"
    if mode == "nr":
        dataset = read_manifest(SHARED / "clive" / "manifest.csv", name="clive")
        description = ("CLIVE share (LIVE In the Wild, Ghadiyaram & Bovik 2016): 696 "
                       "photographs, crowd MOS 0–100")
        train, _ = heldout_split(dataset)  # the split refit_stacker uses
        floor = float(np.min(dataset.scores[train]))
    else:
        dataset = severity_dataset()
        description = dataset.description
        floor = 0.0
    anchors = anchor_dataset(photos, WORK / f"anchors_{mode}", mode=mode,  # type: ignore[arg-type]
                             floor=floor)
    staging = Path(tempfile.mkdtemp()) / "bundle"
    work = WORK / "fr_calibrated" if mode == "fr" else WORK  # where its features are cached
    report = refit_stacker(bundle, dataset, staging, work=work, name=f"default_{mode}",
                           anchors=anchors, description=description)
    shutil.rmtree(bundle)
    shutil.copytree(staging, bundle)
    print(json.dumps(report["heldout_metrics"]["fused"], indent=1))
    print(json.dumps(report["heldout_metrics"]["interval"], indent=1))
    return 0


def main(argv: list[str]) -> int:
    mode = argv[0] if argv else "nr"
    if mode in ("nr-anchors", "fr-anchors"):
        return refit_with_anchors(mode[:2])
    out = ROOT / "fusion" / "models" / f"default_{mode}"
    if out.exists():
        shutil.rmtree(out)
    if mode == "nr":
        dataset = read_manifest(SHARED / "clive" / "manifest.csv", name="clive")
        description = ("CLIVE share (LIVE In the Wild, Ghadiyaram & Bovik 2016): 696 "
                       "photographs, crowd MOS 0–100")
        report = train_fusion(dataset, out, work=WORK, name="default_nr",
                              description=description, reuse_backbones="--reuse" in argv)
    else:
        dataset = severity_dataset()
        report = train_fusion(dataset, out, work=WORK / "fr_calibrated", name="default_fr",
                              description=dataset.description, backbones=(), monotone=True)
    print(json.dumps(report["heldout_metrics"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

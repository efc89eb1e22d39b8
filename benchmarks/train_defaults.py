"""Train the embedded default models and write them into fusion/models/.

Usage::

    python benchmarks/train_defaults.py nr     # CLIVE share (human crowd MOS)
    python benchmarks/train_defaults.py fr     # synthetic Kodak distortions (no FR human data)
    python benchmarks/train_defaults.py fr-parts   # add trunk/head parts to the FR bundle
    python benchmarks/train_defaults.py nr-anchors # refit the NR stacker with anchors
    python benchmarks/train_defaults.py fr-anchors # refit the FR stacker with anchors

No-reference: the CLIVE share of ../shared/data (696 images), split by content into 80 %
training and 20 % held out. Full-reference: no full-reference human-rated database is in
../shared/data, so the model is fitted to the synthetic distortions of the 24 Kodak
photographs with a severity target, 100·(1 − level/6), plus each photograph paired with
itself as level 0 (target 100: without them an undistorted pair is out of distribution
and was scored below a JPEG-distorted one); its metadata says so. The ``*-anchors``
modes refit the shipped bundle's stacker and interval on the same training part plus the
anchor images of the 24 Kodak photographs (:mod:`fusion.training.anchors`), keeping its
backbones. Each run prints the held-out report that goes into the bundle's
metadata.json.
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
from fusion.distortions import generate_synthetic  # noqa: E402
from fusion.distortions import severity_dataset as with_severity  # noqa: E402
from fusion.training import train_fusion  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
WORK = ROOT / "benchmarks" / "results"


def severity_dataset() -> Dataset:
    from dataclasses import replace

    synthetic = generate_synthetic(SHARED / "pristine" / "kodak", WORK / "synthetic",
                                   progress=True)
    return replace(with_severity(synthetic), name="synthetic_kodak",
                   description="24 Kodak photographs × 13 synthetic distortions × 5 levels, "
                               "and each photograph against itself (level 0); target "
                               "100·(1 − level/6); NOT human ratings")


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
    report = refit_stacker(bundle, dataset, staging, work=WORK, name=f"default_{mode}",
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
    if mode == "fr-parts":  # add trunk/head parts to the shipped full-reference bundle
        from fusion.training import add_pair_parts

        print(add_pair_parts(ROOT / "fusion" / "models" / "default_fr"))
        return 0
    out = ROOT / "fusion" / "models" / f"default_{mode}"
    if out.exists():
        shutil.rmtree(out)
    if mode == "nr":
        dataset = read_manifest(SHARED / "clive" / "manifest.csv", name="clive")
        description = ("CLIVE share (LIVE In the Wild, Ghadiyaram & Bovik 2016): 696 "
                       "photographs, crowd MOS 0–100")
    else:
        dataset = severity_dataset()
        description = dataset.description
    report = train_fusion(dataset, out, work=WORK, name=f"default_{mode}",
                          description=description, reuse_backbones="--reuse" in argv)
    print(json.dumps(report["heldout_metrics"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

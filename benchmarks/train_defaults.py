"""Train the embedded default models and write them into fusion/models/.

Usage::

    python benchmarks/train_defaults.py nr     # CLIVE share (human crowd MOS), "accurate"
    python benchmarks/train_defaults.py fast   # the "fast" preset's no-reference model
    python benchmarks/train_defaults.py fr     # KADID-calibrated synthetic set (no FR human data)
    python benchmarks/train_defaults.py nr-tuned     # add tuned branches to "accurate"
    python benchmarks/train_defaults.py fast-tuned   # the same for "fast" (its Lite0)
    python benchmarks/train_defaults.py nr-anchors   # refit the NR stacker with anchors
    python benchmarks/train_defaults.py fast-anchors # the same for the fast preset
    python benchmarks/train_defaults.py fr-anchors   # refit the FR stacker with anchors

No-reference: the CLIVE share of ../shared/data (696 images), split by content into 80 %
training and 20 % held out. ``accurate`` (``fusion/models/default_nr``) fuses the three
EfficientNet-Lite backbones (every stage's pooled features; Lite0 on 4 patches, Lite1 on
9, Lite2 on 6) with every no-reference handcrafted extractor; ``fast``
(``fusion/models/fast_nr``) fuses Lite0 on 4 patches with the NSS (BRISQUE-style) features
alone. Their backbones are then exported with float16 weights (half the size, same speed),
and the ``*-anchors`` step (run it next) refits the stacker on the features of those
float16 graphs. A retrained bundle keeps the distortion diagnostics of the one it replaces
(they read handcrafted features only; the ``fast`` preset has none, as it lacks most of
their inputs).

``nr-tuned`` (after ``nr`` and ``nr-anchors``: it needs an untuned bundle, e.g. the one of
commit 9c7ade9 restored with ``git checkout 9c7ade9 -- fusion/models/default_nr
fusion/models/fast_nr``) tunes a copy of each ``accurate`` backbone's upper stages (5, 6
and the head convolution, from cached stage-4 activations, keeping the mean of the
weights of epochs 5–12: :data:`TUNING_RECIPE`; the shipped bundles, tuned 2026-12-01,
kept each run's best validation epoch, ``{"start_stage": 5}``:
:func:`fusion.training.tuning.tune_trunk`) on the same training part, cross-fitted over
five content-disjoint folds of it, adds each tuned branch to its backbone's graph
(:func:`fusion.training.fused.tuned_extractors`: one pass of the lower stages feeds both)
and refits the stacker, with anchors, on the cross-fitted tuned qualities (never on the
in-sample ones). About an hour a backbone on two cores (Lite0: 10 minutes of
activations, 48 of tuning); the results are cached in
``benchmarks/results/nr_tuning``. ``fast-tuned`` does the same for the ``fast`` preset's
Lite0 (the same four patches and training part: the tuned trunk of ``nr-tuned`` is reused,
joined to the fast bundle's own heads).

Full-reference: no full-reference human-rated database is in ../shared/data, so the model
is fitted to the KADID-calibrated synthetic set of :mod:`fusion.training.calibrated` —
KADID-10k's 25 distortions at levels 1–7 of 44 references (24 Kodak, 4 scikit-image, the
16 best-rated CLIVE photographs), each with the KADID-10k mean rating of its (type, level)
as target, plus each reference against itself (target 100) — with the monotone stacker and
the handcrafted features alone (run ``benchmarks/fr_calibrated.py`` first: it builds the
set and its feature cache, and measures the alternatives); its metadata says so. The
``*-anchors`` modes refit the shipped bundle's stacker and interval on the same training
part plus the anchor images of the 24 Kodak photographs (:mod:`fusion.training.anchors`),
keeping its backbones. Each run prints the held-out report that goes into the bundle's
metadata.json.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fusion.datasets import Dataset, read_manifest  # noqa: E402
from fusion.training import train_fusion  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
WORK = ROOT / "benchmarks" / "results"
#: The accurate preset's backbones and patches per image: 4/9/6 measured 0.797 CLIVE 5-fold
#: SRCC against 0.798 for 9/9/9, at 48 ms less per 500×500 image (docs/models.md).
ACCURATE_PATCHES = {"efficientnet_lite0": 4, "efficientnet_lite1": 9, "efficientnet_lite2": 6}
#: The tuning recipe: stages 5, 6 and the head, the mean of epochs 5–12's weights (CLIVE
#: 5-fold: each trunk +0.009 SRCC over its best validation epoch, README; the shipped
#: bundles, tuned 2026-12-01, kept the best epoch: ``{"start_stage": 5}``).
TUNING_RECIPE = {"start_stage": 5, "epochs": 12, "average_from": 5}
TUNED_TRAINING = ("CLIVE share, the default's training part; stages 5, 6 and the head "
                  "convolution tuned from ImageNet on the grid's patches under 8 dihedral "
                  f"transforms, MSE + pairwise rank loss, {TUNING_RECIPE['epochs']} epochs, "
                  f"the mean of the weights of epochs {TUNING_RECIPE['average_from']}-"
                  f"{TUNING_RECIPE['epochs']} kept (validated on a content-disjoint 15 %); "
                  "the stacker learned from qualities cross-fitted over 5 content-disjoint "
                  "folds of the training part")
CLIVE_DESCRIPTION = ("CLIVE share (LIVE In the Wild, Ghadiyaram & Bovik 2016): 696 "
                     "photographs, crowd MOS 0–100")
#: bundle name → (folder, work folder of its backbones and feature cache)
BUNDLES = {"default_nr": (ROOT / "fusion" / "models" / "default_nr", WORK),
           "fast_nr": (ROOT / "fusion" / "models" / "fast_nr", WORK / "fast"),
           "default_fr": (ROOT / "fusion" / "models" / "default_fr", WORK / "fr_calibrated")}


def severity_dataset() -> Dataset:
    """The KADID-calibrated synthetic set (built by benchmarks/fr_calibrated.py)."""
    from fusion.training.calibrated import calibrated_synthetic, reference_groups

    work = WORK / "fr_calibrated"
    return calibrated_synthetic(reference_groups(SHARED, work), work / "synthetic",
                                SHARED / "score_files" / "kadid10k" / "names_with_mos.txt",
                                jobs=2, progress=True)


#: Where the tuned trunks and their activation caches live (shared with nr_tuning.py).
TUNING_WORK = WORK / "nr_tuning"


def tuned_trunks(dataset: Dataset, backbones: dict[str, int]) -> dict[str, Any]:
    """Each backbone (name → patches an image) tuned on the default's training part."""
    import numpy as np

    from fusion.training.fused import heldout_split
    from fusion.training.tuning import TuningSettings, tune_trunk

    train, _ = heldout_split(dataset)
    images = [str(item.image) for item in dataset]
    return {name: tune_trunk(name, images, dataset.scores, dataset.content_ids,
                             np.asarray(train), TUNING_WORK, max_patches=patches,
                             settings=TuningSettings(**TUNING_RECIPE), progress=True)
            for name, patches in backbones.items()}


def cross_fitted_columns(dataset: Dataset, tuned: dict[str, Any]) -> dict[str, Any]:
    """Tuned-quality column name → cross-fitted values (0–1) on the dataset, NaN elsewhere."""
    import numpy as np

    from fusion.training.fused import heldout_split

    train, _ = heldout_split(dataset)
    columns = {}
    for name, trunk in tuned.items():
        column = np.full(len(dataset), np.nan)
        column[np.asarray(train)] = trunk.cross_fitted / 100.0
        columns[f"bb:{name}:q_tuned"] = column
    return columns


def refit_with_anchors(name: str, *, tune: bool = False) -> int:
    """Refit the shipped bundle ``name``'s stacker with anchors.

    Its backbones are kept (a tuned one with its cross-fitted qualities); ``tune`` first
    adds tuned branches to them (``nr-tuned``, ``fast-tuned``).
    """
    import tempfile

    import numpy as np

    from fusion.training import refit_stacker
    from fusion.training.anchors import anchor_dataset
    from fusion.training.fused import heldout_split

    photos = sorted((SHARED / "pristine" / "kodak").glob("*.png"))
    bundle, work = BUNDLES[name]
    mode = "fr" if name.endswith("_fr") else "nr"
    if mode == "nr":
        dataset = read_manifest(SHARED / "clive" / "manifest.csv", name="clive")
        description = CLIVE_DESCRIPTION
        train, _ = heldout_split(dataset)  # the split refit_stacker uses
        floor = float(np.min(dataset.scores[train]))
    else:
        dataset = severity_dataset()
        description = dataset.description
        floor = 0.0
    anchors = anchor_dataset(photos, WORK / f"anchors_{mode}", mode=mode,  # type: ignore[arg-type]
                             floor=floor)
    staging = Path(tempfile.mkdtemp()) / "bundle"
    previous = _previous_diagnostics(bundle)
    extractors, cross_fitted = None, None
    if mode == "nr":
        entries = json.loads((bundle / "metadata.json").read_text())["extractors"]
        tuned = tuned_trunks(dataset, {e["backbone"]: e["max_patches"] for e in entries
                                       if "tuned" in e or (tune and e["kind"] == "backbone")})
        if tune:
            from fusion.training.fused import tuned_extractors

            extractors, differences = tuned_extractors(
                bundle, tuned, staging.parent / "tuned", training=TUNED_TRAINING)
            print("tuned float16 graphs, largest output difference:", differences)
        cross_fitted = cross_fitted_columns(dataset, tuned)
    report = refit_stacker(bundle, dataset, staging, work=work, name=name,
                           anchors=anchors, description=description,
                           cross_fitted=cross_fitted, extractors=extractors)
    shutil.rmtree(bundle)
    shutil.copytree(staging, bundle)
    _restore_diagnostics(bundle, previous)
    print(json.dumps(report["heldout_metrics"]["fused"], indent=1))
    print(json.dumps(report["heldout_metrics"]["interval"], indent=1))
    return 0


def _previous_diagnostics(bundle: Path) -> tuple[Any, Any] | None:
    """(diagnoser, its training note) of the bundle about to be replaced, if any."""
    if not (bundle / "metadata.json").is_file():
        return None
    from fusion.bundle import load_bundle

    diagnoser = load_bundle(bundle).diagnoser_
    if diagnoser is None:
        return None
    entry = json.loads((bundle / "metadata.json").read_text()).get("diagnostics", {})
    return diagnoser, entry.get("training")


def _restore_diagnostics(bundle: Path, previous: tuple[Any, Any] | None) -> None:
    if previous is not None:
        from fusion.bundle import attach_diagnoser

        attach_diagnoser(bundle, previous[0], previous[1])


def main(argv: list[str]) -> int:
    which = argv[0] if argv else "nr"
    anchors = {"nr-anchors": "default_nr", "fast-anchors": "fast_nr",
               "fr-anchors": "default_fr"}
    tuned = {"nr-tuned": "default_nr", "fast-tuned": "fast_nr"}
    if which in tuned:
        return refit_with_anchors(tuned[which], tune=True)
    if which in anchors:
        return refit_with_anchors(anchors[which])
    name = {"nr": "default_nr", "fast": "fast_nr", "fr": "default_fr"}[which]
    out, work = BUNDLES[name]
    previous = _previous_diagnostics(out) if which == "nr" else None
    if out.exists():
        shutil.rmtree(out)
    reuse = "--reuse" in argv
    if which in ("nr", "fast"):
        from fusion.features.no_reference import NSSExtractor

        dataset = read_manifest(SHARED / "clive" / "manifest.csv", name="clive")
        if which == "nr":
            report = train_fusion(dataset, out, work=work, name=name,
                                  description=CLIVE_DESCRIPTION, reuse_backbones=reuse,
                                  backbones=tuple(ACCURATE_PATCHES),
                                  max_patches=ACCURATE_PATCHES)
        else:
            report = train_fusion(dataset, out, work=work, name=name,
                                  description=CLIVE_DESCRIPTION, reuse_backbones=reuse,
                                  max_patches=4, handcrafted=(NSSExtractor(),))
    else:
        dataset = severity_dataset()
        report = train_fusion(dataset, out, work=work, name=name,
                              description=dataset.description, backbones=(), monotone=True)
    print(json.dumps(report["heldout_metrics"], indent=1))
    if which in ("nr", "fast"):
        from fusion.training.fused import reexport_backbones

        print("float16 backbones, largest output difference:", reexport_backbones(out))
        print(f"now refit its stacker on the float16 features: {which}-anchors")
    _restore_diagnostics(out, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

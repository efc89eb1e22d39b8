"""Each backbone alone on CLIVE: trained by the project's own code, then measured.

Usage::

    python benchmarks/backbones.py [--backbones efficientnet_lite0,compact,...]
                                   [--out benchmarks/results/backbones] [--quick]

For every backbone (needs the train extra):

* **Training**, with :func:`fusion.training.train_backbone` (what ``fusion-iqa
  train-backbone`` runs) on the training 80 % of CLIVE (``train_val_test_split``, seed 0;
  the same split as the default model). EfficientNet-Lite: frozen ImageNet trunk, heads
  trained. Native ``compact`` and ``wadiqam``: stage 1 on the synthetic Kodak distortions
  (severity target), stage 2 fine-tuned on CLIVE from the stage-1 weights. The
  ``keras.applications`` adapters have no weights file here: MobileNetV3Small is trained
  end to end like the native nets on a small budget; ResNet50 and InceptionV3 are too
  costly to train from random weights on two cores (speed and size only).
* **Own pooled quality** (Σ w·q / Σ w) on the held-out 20 % of CLIVE.
* **5-fold SRCC / PLCC** (seeded, by content) of a ridge regression on the backbone's
  pooled features, from a trunk that never saw CLIVE: the ImageNet trunk for
  EfficientNet-Lite, the stage-1 (synthetic only) network for the native ones.
* Parameters, training time, and LiteRT throughput: 500×500 images/s at the default
  patch count, and patches/s (batches of 64).

The PSNR-style baseline is an RBF SVR on the ten pseudo-reference PSNRs (the image
against its own re-blurred, re-compressed and denoised copies), same folds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

from _learners import ridge, svr  # noqa: E402

from fusion.datasets import read_manifest  # noqa: E402
from fusion.distortions import generate_synthetic  # noqa: E402
from fusion.metrics import evaluate  # noqa: E402
from fusion.splits import ContentKFold, train_val_test_split  # noqa: E402

DEFAULT = "efficientnet_lite0,efficientnet_lite1,efficientnet_lite2,compact,wadiqam," \
          "mobilenetv3small,resnet50,inceptionv3"
# End-to-end training budgets on 2 cores (per patch, wadiqam costs ~40x compact, and
# MobileNetV3Small at 224 px ~10x wadiqam). ResNet50 and InceptionV3 are too costly to
# train from random weights here.
BUDGET = {"compact": {"pretrain_epochs": 10, "max_epochs": 30, "trials": 3,
                      "patches_per_image": 16},
          "wadiqam": {"pretrain_epochs": 3, "max_epochs": 8, "trials": 2,
                      "patches_per_image": 16},
          "mobilenetv3small": {"pretrain_epochs": 1, "max_epochs": 5, "trials": 1,
                               "patches_per_image": 4}}
NATIVE = tuple(BUDGET)


def _ridge_5fold(x: np.ndarray, y: np.ndarray, groups: np.ndarray,
                 learner: str = "ridge") -> dict[str, str]:
    rows = []
    for train, test in ContentKFold(5, seed=0).split(groups, y):
        model = ridge() if learner == "ridge" else svr()
        model.fit(x[train], y[train])
        rows.append(evaluate(model.predict(x[test]), y[test], logistic=5))
    return {k: f"{np.mean([r[m] for r in rows]):.3f} ± {np.std([r[m] for r in rows]):.3f}"
            for k, m in (("srcc", "srcc"), ("plcc", "plcc_logistic"))}


def _pooled(runtime: Any, images: list[Path], max_patches: int) -> np.ndarray:
    from fusion.io import load_image

    return np.stack([runtime.image_vector(load_image(p).rgb, max_patches=max_patches)[0]
                     for p in images])


def _throughput(runtime: Any, image: Path, max_patches: int) -> tuple[float, float]:
    from fusion.io import load_image

    rgb = load_image(image).rgb
    runtime.image_vector(rgb, max_patches=max_patches)
    started, count = time.perf_counter(), 0
    while time.perf_counter() - started < 3.0 or count < 3:
        runtime.image_vector(rgb, max_patches=max_patches)
        count += 1
    images_per_s = count / (time.perf_counter() - started)
    size = runtime.patch_size
    batch = np.random.default_rng(0).random((64, size, size, 3)).astype(np.float32)
    runtime(batch)
    started, count = time.perf_counter(), 0
    while time.perf_counter() - started < 3.0 or count < 2:
        runtime(batch)
        count += 1
    return images_per_s, 64 * count / (time.perf_counter() - started)


def measure(name: str, clive: Any, synthetic: Any, out: Path, quick: bool) -> dict[str, Any]:
    from backbones.export import export_litert
    from backbones.registry import get_backbone, spec_of
    from backbones.runtime import LiteRTBackbone
    from fusion.training import TrainingResult, train_backbone

    spec = spec_of(name)
    train, _, test = train_val_test_split(clive, fractions=(0.8, 0.0, 0.2), seed=0)
    images = [item.image for item in clive]
    y, groups = clive.scores, clive.content_ids
    row: dict[str, Any] = {"backbone": name, "patch_size": spec.patch_size,
                           "max_patches": spec.max_patches}
    model = get_backbone(name)
    row["parameters"] = int(model.count_params())
    trained: TrainingResult | None = None
    features_model: Path | None = None
    report = out / f"{name}_nr.json"
    if report.is_file():  # reuse a finished run (delete the file to retrain)
        trained = TrainingResult(**json.loads(report.read_text()))
        stage1 = out / "stage1" / f"{name}_nr.json"
        if name in NATIVE and stage1.is_file():
            features_model = Path(json.loads(stage1.read_text())["litert_path"])
    elif spec.pretrained:
        trained = train_backbone(name, clive[train], out, trials=2 if quick else 6)
    elif name in NATIVE:
        budget = dict(BUDGET[name])
        if quick:
            budget = {"pretrain_epochs": 1, "max_epochs": 1, "trials": 1,
                      "patches_per_image": 4}
        stage1 = train_backbone(name, None, out / "stage1", mode="nr", pretrain=synthetic,
                                pretrain_epochs=budget["pretrain_epochs"],
                                patches_per_image=budget["patches_per_image"])
        features_model = Path(stage1.litert_path)
        trained = train_backbone(name, clive[train], out, initial=stage1.keras_path,
                                 trials=budget["trials"], max_epochs=budget["max_epochs"],
                                 patches_per_image=budget["patches_per_image"])
        trained.seconds += stage1.seconds
        trained.settings["stage1_seconds"] = round(stage1.seconds, 1)
        (out / f"{name}_nr.json").write_text(json.dumps(trained.__dict__, indent=2))
    if trained is not None:
        runtime = LiteRTBackbone(trained.litert_path)
        held_out = _pooled(runtime, [images[i] for i in test], spec.max_patches)
        metrics = evaluate(100 * held_out[:, 0], y[test], logistic=5)
        row["own_quality_heldout"] = {"srcc": round(metrics["srcc"], 3),
                                      "plcc": round(metrics["plcc_logistic"], 3)}
        row["training_seconds"] = round(trained.seconds, 1)
        row["validation"] = trained.validation
    else:
        runtime = LiteRTBackbone(export_litert(model, out / f"{name}_untrained.tflite"))
        row["note"] = "no weights file here: not trained (speed and size only)"
    if spec.pretrained:
        features_model = Path(trained.litert_path) if trained else None  # frozen trunk
    if features_model is not None:
        pooled = _pooled(LiteRTBackbone(features_model), images, spec.max_patches)
        row["ridge_5fold"] = _ridge_5fold(pooled[:, 3:], y, groups)
        row["ridge_trunk"] = "ImageNet (frozen)" if spec.pretrained else \
            "stage 1 only (synthetic; never saw CLIVE)"
    row["images_per_s"], row["patches_per_s"] = (round(v, 1) for v in _throughput(
        LiteRTBackbone(runtime.path, num_threads=2), images[0], spec.max_patches))
    return row


def psnr_style_baseline(clive: Any) -> dict[str, str]:
    from fusion.feature_table import compute_features
    from fusion.features.no_reference import PseudoReferenceExtractor

    table = compute_features(clive, [PseudoReferenceExtractor()],
                             cache=RESULTS / "features.h5", progress=False)
    columns = [i for i, n in enumerate(table.feature_names) if n.endswith("_psnr")]
    return _ridge_5fold(table.values[:, columns], clive.scores, clive.content_ids, "svr")


def _table_row(row: dict[str, Any]) -> str:
    ridge, own = row.get("ridge_5fold"), row.get("own_quality_heldout")
    cells = [row["backbone"], str(row.get("parameters", "")),
             f"{ridge['srcc']} / {ridge['plcc']}" if ridge else "—",
             f"{own['srcc']:.3f} / {own['plcc']:.3f}" if own else "—",
             f"{row['training_seconds']} s" if "training_seconds" in row else "—",
             str(row.get("images_per_s", "")), str(row.get("patches_per_s", ""))]
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", default=DEFAULT)
    parser.add_argument("--out", type=Path, default=RESULTS / "backbones")
    parser.add_argument("--quick", action="store_true", help="tiny budgets (smoke run)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    clive = read_manifest(SHARED / "clive" / "manifest.csv", name="clive")
    synthetic = generate_synthetic(SHARED / "pristine" / "kodak", RESULTS / "synthetic")
    table = args.out / "backbones.json"  # rows of earlier runs are kept, by backbone
    rows = {r["backbone"]: r for r in json.loads(table.read_text())} if table.is_file() else {}
    baseline = {"backbone": "PSNR-style handcrafted (SVR on 10 pseudo-reference PSNRs)",
                "ridge_5fold": psnr_style_baseline(clive)}
    rows[baseline["backbone"]] = baseline
    print(json.dumps(baseline), flush=True)
    for name in args.backbones.split(","):
        started = time.perf_counter()
        rows[name] = measure(name, clive, synthetic, args.out, args.quick)
        print(json.dumps(rows[name]), f"({time.perf_counter() - started:.0f} s)", flush=True)
        table.write_text(json.dumps(list(rows.values()), indent=1))
    print("\n| backbone | params | CLIVE 5-fold SRCC / PLCC (ridge on pooled features) | "
          "own pooled quality, held-out 20 % SRCC / PLCC | training | images/s (500×500) "
          "| patches/s |\n|---|---:|---|---|---:|---:|---:|")
    for row in rows.values():
        print(_table_row(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())

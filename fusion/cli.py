"""The ``fusion-iqa`` command.

``fusion-iqa score IMAGE [REFERENCE]`` scores one image (no-reference) or pair
(full-reference) with the embedded default models; ``--example`` scores a bundled pair in
both modes. ``batch`` scores a folder, a pair of folders or a manifest into a CSV, JSONL
or Parquet file (see :mod:`fusion.batch`). ``info`` prints a bundle's metadata,
``evaluate`` the handcrafted baselines of a database, ``train-backbone`` trains and
exports a backbone (train extra), and ``serve`` runs the local web page and JSON API (web
extra, :mod:`fusion.web`).
Exit status: 0 success, 1 bad input or model (the reason on stderr), 2 usage error,
3 a batch finished but some of its items failed (each reason is in the output).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fusion._version import __version__
from fusion.api import DEFAULT_PRESET, PRESETS

if TYPE_CHECKING:
    from fusion.diagnostics import Diagnostics

__all__ = ["main"]

_EPILOG = """examples:
  fusion-iqa score --example                 score the bundled coffee_jpeg pair, both modes
  fusion-iqa score photo.jpg                 no-reference score of one image
  fusion-iqa score distorted.png reference.png --json
  fusion-iqa score photo.jpg --map map.png   also write the per-patch quality map
  fusion-iqa batch photos/ --out scores.csv   no-reference scores of a folder
  fusion-iqa batch distorted/ references/ --out scores.jsonl --jobs 2 --cache feats.h5
  fusion-iqa batch manifest.csv --out scores.parquet --scheduler tcp://127.0.0.1:8786
  fusion-iqa info                            the default models' metadata
  fusion-iqa serve                           web page and JSON API on 127.0.0.1:8000

exit status: 0 ok, 1 bad input or model, 2 usage error, 3 batch done with failed items
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``fusion-iqa`` (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="fusion-iqa",
        description="Image quality assessment; scores on 0–100, higher = better.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fusion-iqa {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    score = commands.add_parser(
        "score", help="score an image (no-reference) or an image and its reference",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    score.add_argument("image", nargs="?", help="the image to judge (path)")
    score.add_argument("reference", nargs="?", help="its pristine reference (path), optional")
    score.add_argument(
        "--example", nargs="?", const="", metavar="NAME",
        help="score a bundled example pair in both modes (default: coffee_jpeg)",
    )
    score.add_argument("--model", help="a bundle (or a preset name) to use instead of the "
                       "default")
    score.add_argument("--preset", choices=tuple(PRESETS), default=None,
                       help=f"which embedded models (default: {DEFAULT_PRESET}); fast "
                            "differs without a reference")
    score.add_argument("--json", action="store_true", help="print JSON instead of text")
    score.add_argument("--map", metavar="PNG", help="write the per-patch quality map overlay")

    batch = commands.add_parser(
        "batch", help="score a folder, a pair of folders or a manifest into one file",
        description="Score many images (no-reference) or pairs (full-reference). A bad item "
                    "gets a row with its error and the job goes on; with --cache a killed "
                    "job resumes without recomputing finished items.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_argument("input", help="a folder of images, or a CSV manifest with columns "
                                     "image[, reference][, id]")
    batch.add_argument("references", nargs="?",
                       help="with a folder INPUT: the folder of references, matched by name")
    batch.add_argument("--out", required=True, help="results file: .csv, .jsonl or .parquet")
    batch.add_argument("--model", help="a bundle to use instead of the defaults, or a "
                       "preset name (fast: its no-reference model)")
    batch.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    batch.add_argument("--cache", help="HDF5 feature cache to reuse and fill (resume)")
    batch.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on this Dask scheduler (dask.distributed)")
    batch.add_argument("--chunk-size", type=int, default=64, help="items per chunk")
    bar = batch.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="always show the progress bar (default: on a terminal only)")
    bar.add_argument("--no-progress", dest="progress", action="store_false")

    serve = commands.add_parser(
        "serve", help="a local web page and JSON API for scoring (web extra)",
        description="Serve the page (drop images, see scores, intervals and quality maps) "
                    "and the JSON API (POST /v1/predict, GET /v1/models, GET /healthz, "
                    "OpenAPI at /docs). Binds to 127.0.0.1 unless told otherwise.",
        epilog="examples:\n"
               "  fusion-iqa serve                         http://127.0.0.1:8000/\n"
               "  fusion-iqa serve --port 9000 --workers 2\n"
               "  curl -F image=@photo.jpg http://127.0.0.1:8000/v1/predict",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--model", help="a bundle to use instead of the defaults")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes, each loading the models once")
    serve.add_argument("--max-upload-mb", type=float, default=50.0,
                       help="largest request accepted, in MB (413 above; default 50)")

    info = commands.add_parser("info", help="print a bundle's metadata and held-out metrics")
    info.add_argument("bundle", nargs="?", help="bundle path (default: both default models)")

    train = commands.add_parser(
        "train-backbone", help="train a backbone and export it to LiteRT (train extra)",
        description="EfficientNet-Lite backbones keep their ImageNet trunk frozen and train "
                    "their heads on DATA. The others (wadiqam, compact, keras.applications "
                    "with weights=None) train end to end: stage 1 on synthetic distortions "
                    "of the --pretrain photographs, stage 2 on DATA.",
        epilog="examples:\n"
               "  fusion-iqa train-backbone efficientnet_lite1 clive/manifest.csv --out bb/\n"
               "  fusion-iqa train-backbone compact clive/manifest.csv --pretrain kodak/ "
               "--out bb/\n"
               "  fusion-iqa train-backbone wadiqam --mode fr --pretrain kodak/ --out bb/",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("name", help="registered backbone, e.g. efficientnet_lite0")
    train.add_argument("data", nargs="?", help="a CSV manifest of rated images")
    train.add_argument("--out", required=True, help="output folder")
    train.add_argument("--mode", choices=("nr", "fr"),
                       help="default: the data's mode (fr with --pretrain alone)")
    train.add_argument("--pretrain", metavar="PRISTINE_DIR",
                       help="photographs to distort for stage-1 pre-training")
    train.add_argument("--pretrain-kinds", help="comma-separated distortion types "
                                                "(default: all)")
    train.add_argument("--trials", type=int, default=6, help="random-search trials")
    train.add_argument("--epochs", type=int, default=30, help="stage-2 epoch limit")
    train.add_argument("--pretrain-epochs", type=int, default=10)
    train.add_argument("--patches-per-image", type=int, default=16)
    train.add_argument("--seed", type=int, default=0)

    evaluate = commands.add_parser(
        "evaluate",
        help="SRCC/KRCC/PLCC/RMSE of each handcrafted feature alone on a rated database",
        description="Print how well each full-reference handcrafted feature alone agrees "
                    "with a database's human scores (PLCC/RMSE after the VQEG logistic).",
    )
    evaluate.add_argument("database", help="live, csiq, tid2013, tid2008, kadid10k or manifest")
    evaluate.add_argument("path", help="the database's folder (or the manifest CSV)")
    evaluate.add_argument("--cache", help="HDF5 feature cache to use and fill")
    evaluate.add_argument("--published", help="published_correlations.csv to compare with")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    0 success; 1 bad input or a bad model (the reason on stderr); 2 a usage error (raised
    by argparse as ``SystemExit(2)``); 3 a batch finished but some of its items failed.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    handlers = {"evaluate": _evaluate, "score": lambda a: _score(parser, a), "info": _info,
                "train-backbone": _train_backbone, "batch": _batch, "serve": _serve}
    try:
        return int(handlers[args.command](args))
    except (ValueError, OSError, ImportError) as exc:
        print(f"fusion-iqa: error: {exc}", file=sys.stderr)
        return 1


def _evaluate(args: argparse.Namespace) -> int:
    from fusion.datasets import load_dataset
    from fusion.evaluation import format_markdown, human_baselines, published_srcc
    from fusion.feature_table import compute_features

    dataset = load_dataset(args.database, args.path)
    if dataset.mode != "fr":
        raise ValueError(f"{dataset.name} is a no-reference database; the handcrafted "
                         "baselines here are full-reference")
    table = compute_features(dataset, cache=args.cache)
    published = published_srcc(args.published, dataset.name) if args.published else {}
    rows = human_baselines(dataset, table, published)
    print(dataset.summary())
    if table.errors:
        first = next(iter(table.errors.items()))
        print(f"{len(table.errors)} item(s) failed, e.g. #{first[0]}: {first[1]}")
    print(format_markdown(rows))
    return 0


def _score(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    import fusion
    from fusion.examples import EXAMPLE_NAMES, example_paths

    if args.model and args.preset:
        parser.error("give either --model or --preset, not both")
    model = fusion.load(args.model) if args.model else None
    jobs: list[tuple[str, str, str | None]] = []  # (label, image, reference)
    if args.example is not None:
        if args.image or args.reference:
            parser.error("give either --example or IMAGE [REFERENCE], not both")
        name = args.example or EXAMPLE_NAMES[0]
        try:
            reference, image = (str(p) for p in example_paths(name))
        except ValueError as exc:
            parser.error(str(exc))
        jobs = [(f"example {name!r}, full-reference", image, reference),
                (f"example {name!r}, no-reference (distorted image alone)", image, None)]
    elif args.image:
        label = str(args.image) if args.reference is None else \
            f"{args.image} against {args.reference}"
        jobs = [(label, args.image, args.reference)]
    else:
        parser.error("score needs IMAGE [REFERENCE], or --example")
    results = []
    for label, image_path, reference_path in jobs:
        if model is not None:
            result = model.predict(image_path, reference_path, quality_map=bool(args.map))
        else:
            result = fusion.predict(image_path, reference_path, quality_map=bool(args.map),
                                    preset=args.preset or DEFAULT_PRESET)
        results.append((label, result))
        if args.map and result.quality_map is not None:
            result.quality_map.overlay(image_path).save(args.map)
    if args.json:
        payload = [{"input": label, **r.to_dict()} for label, r in results]
        print(json.dumps(payload if len(payload) > 1 else payload[0], indent=2))
        return 0
    for label, result in results:
        low, high = result.interval
        print(f"{label}\n  score {result.score:5.1f} / 100  (higher = better; "
              f"{100 * result.coverage:.0f}% interval {low:.1f}–{high:.1f}; "
              f"model {result.model})")
        backbone = {k: v for k, v in result.components.items() if k.endswith("_quality")}
        width = max(map(len, backbone), default=0)
        for key, value in backbone.items():
            print(f"  {key:<{width}} {value:7.2f}")
        shown = [k for k in ("psnr", "ssim", "ms_ssim", "gmsd", "vifp", "fsimc", "haarpsi",
                             "noise_sigma",
                             "sharpness_laplacian_var", "blockiness") if k in result.components]
        print("  " + ", ".join(f"{k} {result.components[k]:.4g}" for k in shown))
        if result.diagnostics is not None:
            print("  " + _diagnosis_line(result.diagnostics))
        destroyed = result.components.get("destroyed_content_probability", 0.0)
        if destroyed > 0.5:
            print(f"  looks like a blank frame, random noise or a 1-bit image "
                  f"(p = {destroyed:.2f}): scored near the bottom of the scale")
    if args.map:
        print(f"quality map written to {args.map}")
    return 0


def _diagnosis_line(diagnostics: Diagnostics) -> str:
    """``dominant distortion: blur (p 0.93); next noise 0.04``: the family and the runner-up."""
    ranked = sorted(diagnostics.probabilities.items(), key=lambda kv: -kv[1])
    line = f"dominant distortion: {diagnostics.family} (p {diagnostics.probability:.2f})"
    if len(ranked) > 1:
        line += f"; next {ranked[1][0]} {ranked[1][1]:.2f}"
    return line


def _batch(args: argparse.Namespace) -> int:
    from fusion.batch import score_batch

    summary = score_batch(args.input, args.out, references=args.references, model=args.model,
                          jobs=args.jobs, cache=args.cache, scheduler=args.scheduler,
                          chunk_size=args.chunk_size, progress=args.progress)
    print(summary)
    return 3 if summary.failed else 0


def _serve(args: argparse.Namespace) -> int:
    import os

    try:
        import uvicorn

        from fusion.web.app import create_app
    except ImportError as exc:
        raise ImportError("fusion-iqa serve needs the web extra: pip install "
                          "'fusion-iqa[web]'") from exc
    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    limit = int(args.max_upload_mb * 1024 * 1024)
    if args.model is not None:
        import fusion

        fusion.load(args.model)  # refuse a bad bundle before binding the port
    print(f"fusion-iqa: serving on http://{args.host}:{args.port}/ (Ctrl+C to stop)",
          flush=True)
    if args.workers == 1:
        uvicorn.run(create_app(args.model, max_upload_bytes=limit), host=args.host,
                    port=args.port, log_level="warning")
    else:  # each worker builds its own app, and so loads the models once
        os.environ["FUSION_IQA_MODEL"] = args.model or ""
        os.environ["FUSION_IQA_MAX_UPLOAD_BYTES"] = str(limit)
        uvicorn.run("fusion.web.app:create_app_from_environment", factory=True,
                    host=args.host, port=args.port, workers=args.workers,
                    log_level="warning")
    return 0


def _info(args: argparse.Namespace) -> int:
    import fusion
    from fusion.api import default_model

    models = [fusion.load(args.bundle)] if args.bundle else [default_model("nr"),
                                                             default_model("fr")]
    for model in models:
        meta = model.metadata or {}
        print(json.dumps({"model": model.name, "mode": model.mode,
                          "created": meta.get("created"),
                          "library_versions": meta.get("library_versions"),
                          "extractors": [e.get("key") for e in meta.get("extractors", [])],
                          "training_data": meta.get("training_data"),
                          "heldout_metrics": _brief(meta.get("heldout_metrics", {}))},
                         indent=2))
    return 0


def _brief(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "components"}


def _train_backbone(args: argparse.Namespace) -> int:
    from fusion.datasets import read_manifest
    from fusion.distortions import generate_synthetic
    from fusion.training import train_backbone

    if args.data is None and args.pretrain is None:
        raise ValueError("train-backbone needs DATA, --pretrain PRISTINE_DIR, or both")
    dataset = read_manifest(args.data) if args.data else None
    pretrain = None
    if args.pretrain:
        kinds = args.pretrain_kinds.split(",") if args.pretrain_kinds else None
        pretrain = generate_synthetic(args.pretrain, Path(args.out) / "synthetic", kinds=kinds,
                                      seed=args.seed, progress=True)
    result = train_backbone(args.name, dataset, Path(args.out), mode=args.mode,
                            trials=args.trials, seed=args.seed, pretrain=pretrain,
                            max_epochs=args.epochs, pretrain_epochs=args.pretrain_epochs,
                            patches_per_image=args.patches_per_image)
    print(json.dumps({"keras": result.keras_path, "litert": result.litert_path,
                      "validation": result.validation, "seconds": round(result.seconds, 1),
                      "litert_max_difference": result.litert_max_difference}, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

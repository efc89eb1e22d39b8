"""The ``fusion-iqa`` command.

``fusion-iqa score IMAGE REFERENCE`` (or ``--example [NAME]``) prints the full-reference
handcrafted features of a pair. The fused 0–100 score is not built yet; until it is,
this command says so rather than printing a number it does not have.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from fusion._version import __version__

__all__ = ["main"]

_DIRECTION = {
    "mse": "lower is better, [0, 1] scale",
    "psnr": "dB, higher is better",
    "ssim": "higher is better, 1 = identical",
    "ms_ssim": "higher is better, 1 = identical",
    "gmsd": "lower is better, 0 = identical",
    "vifp": "higher is better, 1 = identical",
}

_EPILOG = """examples:
  fusion-iqa score --example                 score the bundled coffee_jpeg pair
  fusion-iqa score --example astronaut_blur --json
  fusion-iqa score distorted.png reference.png
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
        "score",
        help="score an image against its reference (full-reference handcrafted features)",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    score.add_argument("image", nargs="?", help="the distorted image (path)")
    score.add_argument("reference", nargs="?", help="its pristine reference (path)")
    score.add_argument(
        "--example", nargs="?", const="", metavar="NAME",
        help="score a bundled example pair instead (default: coffee_jpeg)",
    )
    score.add_argument("--json", action="store_true", help="print JSON instead of a table")

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
    """Run the command line; returns the exit status (0 ok, 2 usage error, 1 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "evaluate":
        return _evaluate(args)
    return _score(parser, args)


def _evaluate(args: argparse.Namespace) -> int:
    from fusion.datasets import load_dataset
    from fusion.evaluation import format_markdown, human_baselines, published_srcc
    from fusion.feature_table import compute_features

    try:
        dataset = load_dataset(args.database, args.path)
        if dataset.mode != "fr":
            raise ValueError(f"{dataset.name} is a no-reference database; the handcrafted "
                             "baselines here are full-reference")
        table = compute_features(dataset, cache=args.cache)
        published = published_srcc(args.published, dataset.name) if args.published else {}
        rows = human_baselines(dataset, table, published)
    except (ValueError, OSError) as exc:
        print(f"fusion-iqa: error: {exc}", file=sys.stderr)
        return 1
    print(dataset.summary())
    if table.errors:
        first = next(iter(table.errors.items()))
        print(f"{len(table.errors)} item(s) failed, e.g. #{first[0]}: {first[1]}")
    print(format_markdown(rows))
    return 0


def _score(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from fusion.examples import EXAMPLE_NAMES, example_paths
    from fusion.features import full_reference_features

    if args.example is not None:
        if args.image or args.reference:
            parser.error("give either --example or IMAGE REFERENCE, not both")
        name = args.example or EXAMPLE_NAMES[0]
        try:
            reference, image = example_paths(name)
        except ValueError as exc:
            parser.error(str(exc))
        label = f"example pair {name!r}"
    elif args.image and args.reference:
        image, reference = args.image, args.reference
        label = f"{image} against {reference}"
    else:
        parser.error(
            "score needs IMAGE and REFERENCE (no-reference scoring is not built yet), "
            "or --example"
        )
    try:
        features = full_reference_features(reference, image)
    except (ValueError, OSError) as exc:
        print(f"fusion-iqa: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"input": label, "mode": "fr", "score": None, "features": features},
                         indent=2))
        return 0
    print(f"fusion-iqa {__version__}: {label}")
    for key, value in features.items():
        print(f"  {key:<8} {value:12.6f}   ({_DIRECTION.get(key, '')})")
    print("  score    not available yet: the fused 0–100 model is still being built; "
          "these are its handcrafted full-reference inputs.")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

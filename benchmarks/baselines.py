"""Baseline report: each handcrafted full-reference feature alone, per database.

Usage::

    python benchmarks/baselines.py                       # synthetic set from Kodak
    python benchmarks/baselines.py --database tid2013=/data/tid2013 --database live=/data/live

(a) The synthetic set: every pristine photograph (default ../shared/data/pristine/kodak)
distorted by every type of fusion.distortions at 5 levels; reports the signed SRCC of each
feature against severity within each type (1 = the feature orders all levels correctly).
(b) Each human-rated full-reference database given with --database NAME=PATH: SRCC, KRCC,
and PLCC/RMSE after the VQEG 5-parameter logistic, next to the published SRCC of the same
metric from ../shared/data/reference_values/published_correlations.csv.

Features are cached in --cache (HDF5): a second run computes nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fusion.cache import FeatureCache  # noqa: E402
from fusion.datasets import load_dataset  # noqa: E402
from fusion.distortions import generate_synthetic  # noqa: E402
from fusion.evaluation import (  # noqa: E402
    format_markdown,
    human_baselines,
    published_srcc,
    severity_baselines,
)
from fusion.feature_table import compute_features  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pristine", type=Path, default=SHARED / "pristine" / "kodak")
    parser.add_argument("--no-synthetic", action="store_true")
    parser.add_argument("--max-side", type=int, default=None,
                        help="down-scale pristine images to this longer side")
    parser.add_argument("--limit", type=int, default=None, help="use the first N pristine")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--database", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--published", type=Path,
                        default=SHARED / "reference_values" / "published_correlations.csv")
    parser.add_argument("--cache", type=Path, default=None,
                        help="HDF5 feature cache (default: WORK/features.h5)")
    args = parser.parse_args(argv)
    cache_path = args.cache or args.work / "features.h5"

    with FeatureCache(cache_path) as cache:
        if not args.no_synthetic:
            pristine = sorted(p for p in args.pristine.glob("*.png"))[: args.limit]
            if not pristine:
                print(f"no pristine images in {args.pristine}; skipping the synthetic set")
            else:
                start = time.perf_counter()
                synthetic = generate_synthetic(pristine, args.work / "synthetic",
                                               max_side=args.max_side, progress=True)
                table = compute_features(synthetic, cache=cache, progress=True)
                print(f"\n## Synthetic: {synthetic.summary()}; {table.computed} computed, "
                      f"{table.from_cache} from cache, {len(table.errors)} errors, "
                      f"{time.perf_counter() - start:.0f} s\n")
                print("Signed SRCC of each feature against distortion level, per type:\n")
                print(format_markdown(severity_baselines(synthetic, table), severity=True))
        for spec in args.database:
            name, _, path = spec.partition("=")
            dataset = load_dataset(name, path)
            missing = dataset.missing_files()
            if missing:
                print(f"\n{dataset.name}: {len(missing)} image files missing under {path} "
                      f"(e.g. {missing[0]}); they are reported as errors")
            table = compute_features(dataset, cache=cache, progress=True)
            published = published_srcc(args.published, dataset.name) \
                if args.published.is_file() else {}
            print(f"\n## {dataset.summary()}; {table.computed} computed, {table.from_cache} "
                  f"from cache, {len(table.errors)} errors\n")
            print(format_markdown(human_baselines(dataset, table, published)))
        if not args.database:
            print("\nNo human-rated full-reference database given (--database NAME=PATH). "
                  f"{SHARED} holds their score files but not their images.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

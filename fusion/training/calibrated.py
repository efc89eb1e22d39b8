"""The KADID-calibrated synthetic training set of the full-reference model.

Pristine references from three sources, each its own *group* (reported separately):

* ``kodak``: the 24 Kodak photographs (``<data>/pristine/kodak``);
* ``packages``: the colour photographs that ship inside scikit-image
  (astronaut, coffee, chelsea, rocket);
* ``clive_best``: the highest-rated photographs of the CLIVE share
  (``<data>/clive/manifest.csv``): good photographs used as pristine references, the
  KADIS-700k idea.

Every reference gets KADID-10k's 25 distortions at levels 1–7
(:data:`fusion.distortions.KADID_DISTORTIONS`) and the human-calibrated target of each
(type, level) (:func:`fusion.distortions.severity_dataset`, ``target="calibrated"``).
Content ids are ``<group>/<name>``, so that splits by content keep a reference and all
its distortions on one side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from fusion.datasets import Dataset

__all__ = ["GROUPS", "calibrated_synthetic", "group_of", "reference_groups"]

#: The reference groups, in the order :func:`reference_groups` returns them.
GROUPS = ("kodak", "packages", "clive_best")
PACKAGE_PHOTOGRAPHS = ("astronaut", "coffee", "chelsea", "rocket")


def reference_groups(data: str | Path, work: str | Path, *, clive_best: int = 16,
                     kodak: int | None = None, packages: bool = True
                     ) -> dict[str, list[Path]]:
    """The pristine references of each group.

    Parameters
    ----------
    data : folder
        The shared data folder (with ``pristine/kodak`` and ``clive/manifest.csv``).
    work : folder
        Where the package photographs are written as PNG files.
    clive_best : int
        How many of the highest-rated CLIVE photographs to use (0 for none).
    kodak : int, optional
        Use only the first ``kodak`` Kodak photographs (all by default).
    packages : bool
        Include the scikit-image photographs.
    """
    import csv

    import numpy as np
    import skimage.data
    from PIL import Image

    data, work = Path(data), Path(work)
    photographs = sorted((data / "pristine" / "kodak").glob("*.png"))[:kodak]
    if not photographs:
        raise FileNotFoundError(f"no Kodak photographs in {data / 'pristine' / 'kodak'}")
    groups = {"kodak": photographs}
    if packages:
        sources = work / "package_photographs"
        sources.mkdir(parents=True, exist_ok=True)
        groups["packages"] = []
        for name in PACKAGE_PHOTOGRAPHS:
            path = sources / f"skimage_{name}.png"
            if not path.exists():
                Image.fromarray(np.asarray(getattr(skimage.data, name)())).save(path)
            groups["packages"].append(path)
    if clive_best:
        manifest = data / "clive" / "manifest.csv"
        with open(manifest, newline="", encoding="utf-8") as handle:
            rows = sorted(csv.DictReader(handle), key=lambda r: -float(r["mos"]))
        groups["clive_best"] = [manifest.parent / r["image"] for r in rows[:clive_best]]
    return groups


def calibrated_synthetic(groups: dict[str, list[Path]], out_dir: str | Path,
                         score_file: str | Path, *, levels: Sequence[int] = (1, 2, 3, 4, 5, 6, 7),
                         seed: int = 0, max_side: int = 512, jobs: int = 1,
                         progress: bool = False) -> Dataset:
    """Distort every group's references and attach the calibrated targets.

    Generation resumes (existing files are kept); ``jobs`` groups are made in parallel.
    Returns one full-reference :class:`Dataset` whose content ids are ``<group>/<name>``
    and whose items are in group order.
    """
    from joblib import Parallel, delayed

    from fusion.distortions import KADID_DISTORTIONS, generate_synthetic, severity_dataset

    if not groups or not all(groups.values()):
        raise ValueError("every reference group needs at least one reference")
    out = Path(out_dir)
    made = Parallel(n_jobs=jobs)(
        delayed(generate_synthetic)(paths, out / group, kinds=KADID_DISTORTIONS,
                                    levels=levels, seed=seed, max_side=max_side,
                                    progress=progress)
        for group, paths in groups.items())
    items = []
    for group, synthetic in zip(groups, made, strict=True):
        rated = severity_dataset(synthetic, target="calibrated", score_file=score_file)
        items += [replace(i, content_id=f"{group}/{i.content_id}") for i in rated]
    counts = ", ".join(f"{len(paths)} {group}" for group, paths in groups.items())
    return Dataset(name="kadid_synthetic", mode="fr", items=tuple(items), scale=rated.scale,
                   root=out, description=(
                       f"KADID-10k's 25 distortions at levels {min(levels)}–{max(levels)} of "
                       f"{counts} references (longer side ≤ {max_side} px), and each reference "
                       "against itself (target 100); target: the KADID-10k mean rating of "
                       "each (type, level) on 0–100, extrapolated past level 5; NOT human "
                       "ratings of these images"))


def group_of(content_id: str) -> str:
    """The group of a content id ``<group>/<name>``."""
    return content_id.split("/", 1)[0]

"""Readers for the native layouts and score files of the classic IQA databases.

Point a reader at the folder of a downloaded database. Image paths are resolved in that
folder, ignoring letter case where the release mixes it (TID, CSIQ). Files need not exist
for parsing: :meth:`Dataset.missing_files` says which are absent. Every reader also takes
``score_file=`` so the score file can be read from elsewhere.

Scores are mapped linearly onto 0–100, higher = better (see :data:`SCALES`); the raw
score is kept in :attr:`DatasetItem.raw_score`.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np

from fusion.datasets._base import Dataset, DatasetItem, Mode, ScoreScale

__all__ = [
    "SCALES",
    "read_clive",
    "read_csiq",
    "read_kadid10k",
    "read_koniq10k",
    "read_live",
    "read_tid2008",
    "read_tid2013",
]

#: Raw scale of each database, as its documentation states it.
SCALES: dict[str, ScoreScale] = {
    # LIVE Release 2: realigned DMOS, nominally 0 (pristine) to 100, higher = worse.
    "live": ScoreScale(0.0, 100.0, higher_is_better=False, kind="dmos"),
    # CSIQ: DMOS in [0, 1], higher = worse (Larson & Chandler 2010).
    "csiq": ScoreScale(0.0, 1.0, higher_is_better=False, kind="dmos"),
    # TID2013 and TID2008: MOS on 0–9, higher = better (Ponomarenko et al.).
    "tid2013": ScoreScale(0.0, 9.0, higher_is_better=True, kind="mos"),
    "tid2008": ScoreScale(0.0, 9.0, higher_is_better=True, kind="mos"),
    # KADID-10k: mean ACR rating 1–5, higher = better (its authors call it "dmos").
    "kadid10k": ScoreScale(1.0, 5.0, higher_is_better=True, kind="mos"),
    # CLIVE (LIVE In the Wild): MOS on a 0–100 slider, higher = better.
    "clive": ScoreScale(0.0, 100.0, higher_is_better=True, kind="mos"),
    # KonIQ-10k: MOS on the 1–5 ACR scale, higher = better.
    "koniq10k": ScoreScale(1.0, 5.0, higher_is_better=True, kind="mos"),
}

# CSIQ: the score file's type name -> (folder, file-name tag) in dst_imgs/.
_CSIQ_TYPES = {
    "noise": ("awgn", "AWGN"),
    "jpeg": ("jpeg", "JPEG"),
    "jpeg2000": ("jpeg2000", "jpeg2000"),
    "fnoise": ("fnoise", "fnoise"),
    "blur": ("blur", "BLUR"),
    "contrast": ("contrast", "contrast"),
}
# LIVE Release 2: folders in the order of dmos.mat, with their image counts.
_LIVE_FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174),
                 ("fastfading", 174))


def read_live(root: str | Path, *, score_file: str | Path | None = None,
              include_reference_copies: bool = False) -> Dataset:
    """LIVE Image Quality Assessment Database, Release 2 (Sheikh, Sabir, Bovik 2006).

    Reads ``MOS_NAME_REF.txt`` (``dmos<TAB>folder/imgN.bmp<TAB>ref.bmp``) when present,
    otherwise the release's ``dmos_realigned.mat`` (or ``dmos.mat``) with
    ``refnames_all.mat``; references are in ``refimgs/``.

    Parameters
    ----------
    include_reference_copies : bool, default False
        The release lists a copy of each reference among the distorted images with
        DMOS 0 (203 rows); like the literature, they are dropped unless asked for.
    """
    root = Path(root)
    text = Path(score_file) if score_file else root / "MOS_NAME_REF.txt"
    rows: list[tuple[float, str, str, bool]] = []
    if text.is_file():
        for line_no, fields in _split_lines(text, r"\s+", 3):
            dmos = _float(fields[0], text, line_no)
            rows.append((dmos, fields[1], fields[2], dmos == 0.0))
    else:
        rows = _live_mat_rows(root)
    items = []
    for dmos, image, reference, is_copy in rows:
        if is_copy and not include_reference_copies:
            continue
        folder = image.split("/")[0]
        items.append(DatasetItem(
            image=root / image, reference=root / "refimgs" / reference,
            score=SCALES["live"].normalise(dmos), raw_score=dmos,
            content_id=Path(reference).stem.lower(), distortion=folder, level=None,
        ))
    return _dataset("live", "fr", items, root, "LIVE Release 2 (Sheikh et al. 2006)")


def _live_mat_rows(root: Path) -> list[tuple[float, str, str, bool]]:
    from scipy.io import loadmat

    realigned = root / "dmos_realigned.mat"
    source = realigned if realigned.is_file() else root / "dmos.mat"
    if not source.is_file():
        raise FileNotFoundError(
            f"LIVE: neither MOS_NAME_REF.txt nor dmos_realigned.mat/dmos.mat in {root}"
        )
    mat = loadmat(str(source))
    dmos = mat["dmos_new" if "dmos_new" in mat else "dmos"].ravel()
    orgs = mat["orgs"].ravel()
    names = loadmat(str(root / "refnames_all.mat"))["refnames_all"].ravel()
    images = [f"{folder}/img{i}.bmp" for folder, count in _LIVE_FOLDERS
              for i in range(1, count + 1)]
    if not len(dmos) == len(orgs) == len(names) == len(images):
        raise ValueError(f"LIVE: {source.name} has {len(dmos)} scores, expected {len(images)}")
    return [(float(d), img, str(_mat_string(n)), bool(o))
            for d, img, n, o in zip(dmos, images, names, orgs, strict=True)]


def read_csiq(root: str | Path, *, score_file: str | Path | None = None) -> Dataset:
    """CSIQ (Larson & Chandler 2010): ``ref_dist_mos.txt`` in the database folder.

    Columns ``ref, type_idx, type, level, dmos_std, dmos``; images are
    ``dst_imgs/<folder>/<ref>.<TAG>.<level>.png`` and references ``src_imgs/<ref>.png``.
    """
    root = Path(root)
    path = Path(score_file) if score_file else root / "ref_dist_mos.txt"
    sources = _CaseInsensitiveFolder(root / "src_imgs")
    folders = {f: _CaseInsensitiveFolder(root / "dst_imgs" / f) for f, _ in _CSIQ_TYPES.values()}
    items = []
    for line_no, fields in _split_lines(path, r"\t", 6):
        ref, _, kind, level_text, _, dmos_text = fields
        if kind not in _CSIQ_TYPES:
            raise ValueError(f"{path}:{line_no}: unknown CSIQ distortion type {kind!r}")
        folder, tag = _CSIQ_TYPES[kind]
        level = int(level_text)
        dmos = _float(dmos_text, path, line_no)
        items.append(DatasetItem(
            image=folders[folder] / f"{ref}.{tag}.{level}.png",
            reference=sources / f"{ref}.png",
            score=SCALES["csiq"].normalise(dmos), raw_score=dmos,
            content_id=ref.lower(), distortion=kind, level=level,
        ))
    return _dataset("csiq", "fr", items, root, "CSIQ (Larson & Chandler 2010)")


def read_tid2013(root: str | Path, *, score_file: str | Path | None = None) -> Dataset:
    """TID2013 (Ponomarenko et al. 2015): ``mos_with_names.txt`` (``MOS name`` per line).

    Distorted images ``distorted_images/Ixx_tt_l.bmp`` (any letter case), references
    ``reference_images/Ixx.BMP``; 25 references × 24 types × 5 levels.
    """
    return _read_tid("tid2013", root, score_file, "TID2013 (Ponomarenko et al. 2015)")


def read_tid2008(root: str | Path, *, score_file: str | Path | None = None) -> Dataset:
    """TID2008 (Ponomarenko et al. 2009): same layout as TID2013, 17 types × 4 levels."""
    return _read_tid("tid2008", root, score_file, "TID2008 (Ponomarenko et al. 2009)")


_TID_NAME = re.compile(r"^i(\d\d)_(\d\d)_(\d)\.bmp$", re.IGNORECASE)


def _read_tid(name: str, root: str | Path, score_file: str | Path | None,
              description: str) -> Dataset:
    root = Path(root)
    path = Path(score_file) if score_file else root / "mos_with_names.txt"
    distorted = _CaseInsensitiveFolder(root / "distorted_images")
    references = _CaseInsensitiveFolder(root / "reference_images")
    items = []
    for line_no, fields in _split_lines(path, r"\s+", 2):
        mos = _float(fields[0], path, line_no)
        match = _TID_NAME.match(fields[1])
        if match is None:
            raise ValueError(f"{path}:{line_no}: {fields[1]!r} is not a TID image name "
                             "(Ixx_tt_l.bmp)")
        ref_no, kind, level = match.groups()
        items.append(DatasetItem(
            image=distorted / fields[1],
            reference=references / f"I{ref_no}.BMP",
            score=SCALES[name].normalise(mos), raw_score=mos,
            content_id=f"i{ref_no}", distortion=kind, level=int(level),
        ))
    return _dataset(name, "fr", items, root, description)


def read_kadid10k(root: str | Path, *, score_file: str | Path | None = None) -> Dataset:
    """KADID-10k (Lin, Hosu, Saupe 2019): the release's ``dmos.csv``.

    A ``names_with_mos.txt`` (``name<TAB>score``) is read when there is no ``dmos.csv``;
    images and references are in ``images/``.
    """
    root = Path(root)
    if score_file is not None:
        path = Path(score_file)
    else:
        path = root / "dmos.csv"
        if not path.is_file():
            path = root / "names_with_mos.txt"
    pairs: list[tuple[str, float, int]] = []
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as handle:
            for line_no, row in enumerate(csv.DictReader(handle), start=2):
                pairs.append((row["dist_img"], _float(row["dmos"], path, line_no), line_no))
    else:
        for line_no, fields in _split_lines(path, r"\s+", 2):
            pairs.append((fields[0], _float(fields[1], path, line_no), line_no))
    items = []
    for image, mos, line_no in pairs:
        match = re.match(r"^(I\d\d)_(\d\d)_(\d\d)\.png$", image)
        if match is None:
            raise ValueError(f"{path}:{line_no}: {image!r} is not a KADID name (Ixx_tt_ll.png)")
        ref, kind, level = match.groups()
        items.append(DatasetItem(
            image=root / "images" / image, reference=root / "images" / f"{ref}.png",
            score=SCALES["kadid10k"].normalise(mos), raw_score=mos,
            content_id=ref.lower(), distortion=kind, level=int(level),
        ))
    return _dataset("kadid10k", "fr", items, root, "KADID-10k (Lin, Hosu, Saupe 2019)")


def read_clive(root: str | Path, *, include_training_images: bool = False) -> Dataset:
    """LIVE In the Wild / CLIVE (Ghadiyaram & Bovik 2016): the release's folder layout.

    Reads ``Data/AllImages_release.mat`` and ``Data/AllMOS_release.mat``; images are in
    ``Images/`` (the 7 training images, listed first, in ``Images/trainingImages/``).
    Every image is its own content id.

    Parameters
    ----------
    include_training_images : bool, default False
        Keep the 7 practice images shown to raters first (the literature drops them).
    """
    from scipy.io import loadmat

    root = Path(root)
    names = loadmat(str(root / "Data" / "AllImages_release.mat"))["AllImages_release"].ravel()
    scores = loadmat(str(root / "Data" / "AllMOS_release.mat"))["AllMOS_release"].ravel()
    if len(names) != len(scores):
        raise ValueError(f"CLIVE: {len(names)} image names but {len(scores)} scores")
    items = []
    for index, (raw_name, mos) in enumerate(zip(names, scores, strict=True)):
        name = str(_mat_string(raw_name))
        training = index < 7
        if training and not include_training_images:
            continue
        folder = root / "Images" / ("trainingImages" if training else "")
        items.append(DatasetItem(
            image=folder / name, reference=None, score=SCALES["clive"].normalise(float(mos)),
            raw_score=float(mos), content_id=name.lower(),
        ))
    return _dataset("clive", "nr", items, root, "CLIVE (Ghadiyaram & Bovik 2016)")


def read_koniq10k(root: str | Path, *, score_file: str | Path | None = None,
                  resolution: str = "1024x768") -> Dataset:
    """KonIQ-10k (Hosu et al. 2020): ``koniq10k_scores_and_distributions.csv``.

    Uses its ``image_name`` and ``MOS`` (1–5) columns; images in ``<resolution>/``.
    """
    root = Path(root)
    path = Path(score_file) if score_file else root / "koniq10k_scores_and_distributions.csv"
    items = []
    with open(path, newline="", encoding="utf-8-sig") as handle:
        for line_no, row in enumerate(csv.DictReader(handle), start=2):
            name = row["image_name"]
            mos = _float(row["MOS"], path, line_no)
            items.append(DatasetItem(
                image=root / resolution / name, reference=None,
                score=SCALES["koniq10k"].normalise(mos), raw_score=mos,
                content_id=name.lower(),
            ))
    return _dataset("koniq10k", "nr", items, root, "KonIQ-10k (Hosu et al. 2020)")


# --------------------------------------------------------------------------- helpers


def _dataset(name: str, mode: Mode, items: list[DatasetItem], root: Path,
             description: str) -> Dataset:
    if not items:
        raise ValueError(f"{name}: no items read from {root}")
    return Dataset(name=name, mode=mode, items=tuple(items), scale=SCALES[name], root=root,
                   description=description)


def _split_lines(path: Path, separator: str, count: int) -> list[tuple[int, list[str]]]:
    """Non-empty lines of ``path`` split into exactly ``count`` fields (CRLF tolerated)."""
    if not path.is_file():
        raise FileNotFoundError(f"score file not found: {path}")
    rows = []
    with open(path, encoding="utf-8-sig", errors="strict") as handle:
        for line_no, line in enumerate(handle, start=1):
            stripped = line.strip()
            if not stripped:
                continue
            fields = [f for f in re.split(separator, stripped) if f != ""] \
                if separator != r"\t" else [f.strip() for f in stripped.split("\t")]
            if len(fields) != count:
                raise ValueError(f"{path}:{line_no}: expected {count} fields, got "
                                 f"{len(fields)}: {stripped[:80]!r}")
            rows.append((line_no, fields))
    return rows


def _float(text: str, path: Path, line_no: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path}:{line_no}: {text!r} is not a number") from None


class _CaseInsensitiveFolder:
    """Resolves names in one folder ignoring letter case (listing it once)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._names = ({entry.name.lower(): entry.name for entry in folder.iterdir()}
                       if folder.is_dir() else {})

    def __truediv__(self, name: str) -> Path:
        return self.folder / self._names.get(name.lower(), name)


def _mat_string(value: Any) -> str:
    """Unwrap the cell/char nesting that ``loadmat`` returns for a MATLAB string."""
    while isinstance(value, np.ndarray) and value.size == 1:
        value = value.ravel()[0]
    return str(value)

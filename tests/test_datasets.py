"""Dataset readers: the real score files in ../shared/data and small fake native folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from scipy.io import savemat

from fusion.datasets import (
    SCALES,
    Dataset,
    load_dataset,
    read_clive,
    read_csiq,
    read_kadid10k,
    read_koniq10k,
    read_live,
    read_manifest,
    read_tid2008,
    read_tid2013,
)


def _png(path: Path, value: int = 128, size: tuple[int, int] = (24, 24)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.new("RGB", size, (value, value, value)).save(path)
    return path


# ------------------------------------------------------------- normalisation onto 0–100


@pytest.mark.parametrize("name, raw_best, raw_worst", [
    ("live", 0.0, 100.0), ("csiq", 0.0, 1.0), ("tid2013", 9.0, 0.0), ("tid2008", 9.0, 0.0),
    ("kadid10k", 5.0, 1.0), ("clive", 100.0, 0.0), ("koniq10k", 5.0, 1.0),
])
def test_scales_map_best_to_100_and_worst_to_0(name: str, raw_best: float,
                                                raw_worst: float) -> None:
    # Directions from each database's documentation (see the README's table).
    scale = SCALES[name]
    assert scale.normalise(raw_best) == pytest.approx(100.0)
    assert scale.normalise(raw_worst) == pytest.approx(0.0)


# ------------------------------------------------------------- the real score files


@pytest.fixture(scope="module")
def score_files(shared_data: Path) -> Path:
    return shared_data / "score_files"


@pytest.mark.shared_data
def test_live_release2_score_file(score_files: Path) -> None:
    folder = score_files / "live_release2"
    everything = read_live(folder, include_reference_copies=True)
    assert len(everything) == 982
    live = read_live(folder)
    assert len(live) == 779  # 982 rows minus the 203 reference copies (DMOS 0)
    assert len(set(live.content_ids)) == 29
    assert sorted(set(live.distortions)) == ["fastfading", "gblur", "jp2k", "jpeg", "wn"]
    assert live.raw_scores.min() > 0 and live.raw_scores.max() < 100
    assert np.allclose(live.scores, 100 - live.raw_scores)
    first = live[0]
    assert first.image.as_posix().endswith("jp2k/img2.bmp")
    assert first.reference is not None and first.reference.name == "studentsculpture.bmp"
    assert first.raw_score == pytest.approx(28.003845)


@pytest.mark.shared_data
def test_csiq_score_file(score_files: Path) -> None:
    csiq = read_csiq(score_files / "csiq")
    assert len(csiq) == 866 and len(set(csiq.content_ids)) == 30
    counts = {k: csiq.distortions.count(k) for k in set(csiq.distortions)}
    assert counts == {"noise": 150, "jpeg": 150, "jpeg2000": 150, "fnoise": 150, "blur": 150,
                      "contrast": 116}
    assert csiq.raw_scores.min() >= 0 and csiq.raw_scores.max() <= 1
    assert csiq[0].image.as_posix().endswith("dst_imgs/awgn/1600.AWGN.1.png")
    assert csiq[0].score == pytest.approx(100 * (1 - 0.062))


@pytest.mark.shared_data
def test_tid2013_score_file(score_files: Path) -> None:
    tid = read_tid2013(score_files / "tid2013")
    assert len(tid) == 3000 and len(set(tid.content_ids)) == 25
    assert len(set(tid.distortions)) == 24 and set(tid.levels) == {1, 2, 3, 4, 5}
    assert tid.raw_scores.min() > 0 and tid.raw_scores.max() < 9
    assert tid[0].raw_score == pytest.approx(5.51429)
    assert tid[0].score == pytest.approx(5.51429 / 9 * 100)
    assert {i.content_id for i in tid} == {f"i{k:02d}" for k in range(1, 26)}


@pytest.mark.shared_data
def test_kadid10k_score_file(score_files: Path) -> None:
    kadid = read_kadid10k(score_files / "kadid10k")
    assert len(kadid) == 10125 and len(set(kadid.content_ids)) == 81
    assert len(set(kadid.distortions)) == 25 and set(kadid.levels) == {1, 2, 3, 4, 5}
    assert kadid.raw_scores.min() >= 1 and kadid.raw_scores.max() <= 5
    assert kadid.scores.min() >= 0 and kadid.scores.max() <= 100
    assert kadid[0].reference is not None and kadid[0].reference.name == "I01.png"


@pytest.mark.shared_data
def test_clive_share_manifest(shared_data: Path) -> None:
    clive = read_manifest(shared_data / "clive" / "manifest.csv", name="clive")
    assert clive.mode == "nr" and len(clive) == 696
    assert len(set(clive.content_ids)) == 696  # every image is its own content
    assert clive.scores.min() >= 0 and clive.scores.max() <= 100
    assert clive.missing_files() == []


# ------------------------------------------------------------- fake native folders


def test_live_mat_layout(tmp_path: Path) -> None:
    counts = (227, 233, 174, 174, 174)
    total = sum(counts)
    dmos = np.linspace(10, 80, total)
    orgs = np.zeros(total)
    orgs[::50] = 1
    dmos[orgs == 1] = 0
    names = np.empty((1, total), dtype=object)
    names[0, :] = [f"ref{i % 29}.bmp" for i in range(total)]
    savemat(tmp_path / "dmos_realigned.mat", {"dmos_new": dmos[None, :], "orgs": orgs[None, :]})
    savemat(tmp_path / "refnames_all.mat", {"refnames_all": names})
    live = read_live(tmp_path)
    assert len(live) == total - int(orgs.sum())
    assert live[0].image == tmp_path / "jp2k" / "img2.bmp"
    assert live[0].reference == tmp_path / "refimgs" / "ref1.bmp"
    assert live[-1].image == tmp_path / "fastfading" / "img174.bmp"


def test_csiq_folder_resolves_release_names(tmp_path: Path) -> None:
    (tmp_path / "ref_dist_mos.txt").write_text(
        "1600\t1\tnoise\t1\t0.061\t0.062\r\n1600\t5\tblur\t2\t0.03\t0.3\r\n"
    )
    _png(tmp_path / "src_imgs" / "1600.png")
    _png(tmp_path / "dst_imgs" / "awgn" / "1600.AWGN.1.png")
    _png(tmp_path / "dst_imgs" / "blur" / "1600.blur.2.png")  # lower case in this copy
    csiq = read_csiq(tmp_path)
    assert csiq.missing_files() == []
    assert csiq[1].image.name == "1600.blur.2.png"


def test_tid_folder_with_mixed_case(tmp_path: Path) -> None:
    (tmp_path / "mos_with_names.txt").write_text("5.5 I01_01_1.bmp\r\n4.0 i01_08_2.bmp\r\n")
    _png(tmp_path / "reference_images" / "I01.BMP")
    _png(tmp_path / "distorted_images" / "i01_01_1.bmp")
    _png(tmp_path / "distorted_images" / "I01_08_2.BMP")
    tid = read_tid2013(tmp_path)
    assert tid.missing_files() == []
    assert [i.distortion for i in tid] == ["01", "08"] and [i.level for i in tid] == [1, 2]
    assert read_tid2008(tmp_path).name == "tid2008"


def test_tid_rejects_foreign_names(tmp_path: Path) -> None:
    (tmp_path / "mos_with_names.txt").write_text("5.5 I01_01_1.bmp\n4.0 picture.bmp\n")
    with pytest.raises(ValueError, match=r"mos_with_names.txt:2: 'picture.bmp' is not a TID"):
        read_tid2013(tmp_path)


def test_kadid_release_csv(tmp_path: Path) -> None:
    (tmp_path / "dmos.csv").write_text(
        "dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.57,0.3\nI02_03_05.png,I02.png,1.2,0.1\n"
    )
    kadid = read_kadid10k(tmp_path)
    assert [i.content_id for i in kadid] == ["i01", "i02"]
    assert kadid[1].score == pytest.approx((1.2 - 1) / 4 * 100)


def test_clive_release_layout(tmp_path: Path) -> None:
    names = np.empty((9, 1), dtype=object)
    names[:, 0] = [f"t{i}.bmp" for i in range(1, 8)] + ["10.bmp", "11.bmp"]
    (tmp_path / "Data").mkdir()
    savemat(tmp_path / "Data" / "AllImages_release.mat", {"AllImages_release": names})
    savemat(tmp_path / "Data" / "AllMOS_release.mat",
            {"AllMOS_release": np.arange(9, dtype=float)[None, :] * 10})
    _png(tmp_path / "Images" / "10.bmp")
    _png(tmp_path / "Images" / "11.bmp")
    clive = read_clive(tmp_path)
    assert [i.image.name for i in clive] == ["10.bmp", "11.bmp"]
    assert clive.mode == "nr" and clive.missing_files() == []
    assert len(read_clive(tmp_path, include_training_images=True)) == 9


def test_koniq_csv(tmp_path: Path) -> None:
    (tmp_path / "koniq10k_scores_and_distributions.csv").write_text(
        '"image_name","c1","c2","c3","c4","c5","c_total","MOS","SD","MOS_zscore"\n'
        '"826373.jpg",0,0,25,73,7,105,3.828571,0.527,77.38\n'
    )
    koniq = read_koniq10k(tmp_path)
    assert koniq[0].image == tmp_path / "1024x768" / "826373.jpg"
    assert koniq[0].score == pytest.approx((3.828571 - 1) / 4 * 100)


def test_readers_report_bad_rows(tmp_path: Path) -> None:
    (tmp_path / "ref_dist_mos.txt").write_text("1600\t1\tnoise\t1\t0.061\n")
    with pytest.raises(ValueError, match=r"ref_dist_mos.txt:1: expected 6 fields"):
        read_csiq(tmp_path)
    (tmp_path / "MOS_NAME_REF.txt").write_text("abc\tjp2k/img1.bmp\tref.bmp\n")
    with pytest.raises(ValueError, match=r"'abc' is not a number"):
        read_live(tmp_path)
    with pytest.raises(FileNotFoundError, match="score file not found"):
        read_tid2013(tmp_path / "nowhere")


def test_load_dataset_names_and_suggestions(tmp_path: Path) -> None:
    (tmp_path / "mos_with_names.txt").write_text("5.5 I01_01_1.bmp\n")
    assert load_dataset("TID2013", tmp_path).name == "tid2013"
    with pytest.raises(ValueError, match="did you mean tid2013"):
        load_dataset("tid2031", tmp_path)


# ------------------------------------------------------------- the generic manifest


def test_manifest_full_reference_with_dmos(tmp_path: Path) -> None:
    _png(tmp_path / "img" / "a.png")
    _png(tmp_path / "ref" / "r.png")
    (tmp_path / "ratings.csv").write_text(
        "image,reference,dmos,scale_min,scale_max,distortion,level\n"
        "img/a.png,ref/r.png,20,0,80,blur,2\n"
    )
    ds = read_manifest(tmp_path / "ratings.csv")
    assert ds.mode == "fr" and ds.scale is not None and not ds.scale.higher_is_better
    assert ds[0].score == pytest.approx(75.0)  # DMOS 20 of 0–80, lower = better
    assert ds[0].content_id == "ref/r.png" and ds[0].level == 2
    assert ds.missing_files() == []


def test_manifest_round_trip(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text(
        "image,reference,score,scale_min,scale_max,direction,content_id\n"
        "a.png,r.png,3.5,1,5,higher_is_better,c1\nb.png,r.png,4.5,1,5,higher_is_better,c1\n"
    )
    original = read_manifest(tmp_path / "m.csv")
    again = read_manifest(original.write_manifest(tmp_path / "copy.csv"))
    assert again.items == original.items and again.scale == original.scale


@pytest.mark.parametrize("text, message", [
    ("path,score\na.png,1\n", "no 'image' column"),
    ("image,score\n", "no rows"),
    ("image,score\na.png,good\n", r"m.csv:2: score 'good' is not a number"),
    ("image,reference\na.png,r.png\nb.png,\n", r"m.csv:3: reference is empty"),
    ("image,score,scale_min,scale_max\na.png,1,5,1\n", "must exceed scale_min"),
    ("image,score,direction\na.png,1,up\n", "direction must be"),
    ("image,level\na.png,high\n", "level 'high' is not an integer"),
])
def test_manifest_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_manifest(tmp_path / "m.csv")


def test_dataset_indexing_and_validation(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("image,score\na.png,10\nb.png,20\nc.png,30\n")
    ds = read_manifest(tmp_path / "m.csv")
    assert isinstance(ds[1:], Dataset) and len(ds[1:]) == 2
    assert ds[[2, 0]].scores.tolist() == [30.0, 10.0]
    assert ds[0].image.name == "a.png"
    with pytest.raises(ValueError, match="items without reference"):
        Dataset(name="x", mode="fr", items=ds.items)

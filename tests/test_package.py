"""The package as a user meets it: examples, the command line, import hygiene."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import backbones
import calibrators
import fusion
from fusion.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_packages_export_all() -> None:
    for module in (fusion, backbones, calibrators, fusion.features):
        assert isinstance(module.__all__, list)
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


@pytest.mark.parametrize("name", [None, *fusion.EXAMPLE_NAMES])
def test_example_pairs(name: str | None) -> None:
    ref, dist = fusion.example_pair(name)
    assert ref.shape == dist.shape == (240, 320, 3) and ref.dtype == np.uint8
    assert 18 < fusion.psnr(ref, dist) < 35  # visibly, but not absurdly, distorted


def test_unknown_example_name() -> None:
    with pytest.raises(ValueError, match="unknown example 'nope'; choose one of coffee_jpeg"):
        fusion.example_pair("nope")


def test_examples_can_be_remade_from_scikit_image(tmp_path: Path) -> None:
    pytest.importorskip("skimage")
    from fusion.examples import example_paths, make_example_pairs

    written = make_example_pairs(tmp_path)
    assert len(written) == 2 * len(fusion.EXAMPLE_NAMES)
    for name in fusion.EXAMPLE_NAMES:
        shipped_ref, shipped_dist = example_paths(name)
        remade_ref, remade_dist = tmp_path / shipped_ref.name, tmp_path / shipped_dist.name
        assert fusion.psnr(shipped_ref, remade_ref) == float("inf")
        # The encoders (JPEG) may differ between library versions, slightly.
        assert fusion.psnr(shipped_dist, remade_dist) > 40


def _defaults_installed() -> bool:
    from importlib import resources

    folder = Path(str(resources.files("fusion") / "models"))
    return all((folder / f"default_{m}" / "metadata.json").is_file() for m in ("nr", "fr"))


needs_defaults = pytest.mark.skipif(not _defaults_installed(),
                                    reason="default bundles not trained yet")


@needs_defaults
def test_cli_scores_the_example_in_both_modes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--example"]) == 0
    out = capsys.readouterr().out
    assert "full-reference" in out and "no-reference" in out and "/ 100" in out
    assert "efficientnet_lite0_quality" in out


@needs_defaults
def test_cli_json_map_and_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fusion.examples import example_paths

    ref, dist = example_paths("chelsea_noise")
    assert main(["score", str(dist), str(ref), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["mode"] == "fr" and 0 <= payload["score"] <= 100
    assert payload["components"]["psnr"] == pytest.approx(fusion.psnr(ref, dist))
    assert main(["score", str(dist), "--map", str(tmp_path / "map.png")]) == 0
    assert (tmp_path / "map.png").is_file()
    assert main(["info"]) == 0
    assert '"mode": "nr"' in capsys.readouterr().out


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", str(tmp_path / "a.png"), "--model", str(tmp_path / "nope")]) == 1
    assert "bundle not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["score"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["score", "--example", "nope"])


def test_console_script_version_and_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fusion", "--version"], capture_output=True, text=True,
        cwd=REPO_ROOT, check=True,
    )
    assert result.stdout.strip() == f"fusion-iqa {fusion.__version__}"
    helptext = subprocess.run(
        [sys.executable, "-m", "fusion", "score", "--help"], capture_output=True, text=True,
        cwd=REPO_ROOT, check=True,
    ).stdout
    assert "--example" in helptext and "examples:" in helptext


def test_import_and_features_load_no_heavy_modules() -> None:
    # ../shared/DESIGN.md, "Serving": importing and scoring must not load TensorFlow/Keras.
    code = (
        "import sys, fusion\n"
        "ref, dist = fusion.example_pair()\n"
        "fusion.full_reference_features(ref, dist)\n"
        "heavy = ('tensorflow', 'keras', 'sklearn', 'scipy', 'torch')\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO_ROOT, check=True)
    assert result.stdout.strip() == ""


def test_training_without_the_train_extra_names_it() -> None:
    # Simulate an install without TensorFlow/Keras: importing keras fails.
    code = ("import sys; sys.modules['keras'] = None\n"
            "import backbones\n"
            "for call in (lambda: backbones.get_backbone('compact'),\n"
            "             lambda: backbones.imagenet_classifier()):\n"
            "    try:\n"
            "        call()\n"
            "    except ImportError as exc:\n"
            "        print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO_ROOT, check=True)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and all("pip install 'fusion-iqa[train]'" in line for line in lines)

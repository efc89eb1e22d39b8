"""The package as a user meets it: examples, the command line, import hygiene."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import backbones
import calibrators
import fusion
from fusion.cli import main
from tests.conftest import run_fresh_python

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


def test_cli_scores_the_example_in_both_modes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--example"]) == 0
    out = capsys.readouterr().out
    assert "full-reference" in out and "no-reference" in out and "/ 100" in out
    assert "efficientnet_lite0_quality" in out
    assert out.count("dominant distortion: ") == 2


def test_cli_fast_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--example", "--preset", "fast"]) == 0
    out = capsys.readouterr().out
    assert "model fast_nr@" in out and "model default_fr@" in out
    assert out.count("dominant distortion: ") == 1  # the fast model has no diagnostics
    with pytest.raises(SystemExit) as info:
        main(["score", "--example", "--preset", "fast", "--model", "fast"])
    assert info.value.code == 2
    assert "not both" in capsys.readouterr().err


def test_cli_json_map_and_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fusion.examples import example_paths

    ref, dist = example_paths("chelsea_noise")
    assert main(["score", str(dist), str(ref), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["mode"] == "fr" and 0 <= payload["score"] <= 100
    assert payload["components"]["psnr"] == pytest.approx(fusion.psnr(ref, dist))
    assert payload["diagnostics"]["family"] == fusion.predict(dist, ref).diagnostics.family
    assert set(payload["diagnostics"]["probabilities"]) >= {"blur", "noise", "none"}
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


def test_import_hygiene_in_a_fresh_process() -> None:
    # One fresh interpreter checks every layering and serving promise in turn:
    # 1. `backbones` is the lower package: importing it loads nothing from `fusion`, and
    #    neither TensorFlow nor Keras (../shared/DESIGN.md, "Packages");
    # 2. `import fusion` and the handcrafted features load no heavy module (TensorFlow,
    #    Keras, scikit-learn, SciPy, torch);
    # 3. prediction in both modes never imports TensorFlow or Keras ("Serving").
    code = (
        "import json, sys\n"
        "def loaded(names):\n"
        "    return sorted({m.split('.')[0] for m in sys.modules} & set(names))\n"
        "heavy = ('tensorflow', 'keras', 'sklearn', 'scipy', 'torch')\n"
        "import backbones\n"
        "report = {'backbones': loaded(('fusion', *heavy))}\n"
        "import fusion\n"
        "ref, dist = fusion.example_pair()\n"
        "fusion.full_reference_features(ref, dist)\n"
        "report['features'] = loaded(heavy)\n"
        "fusion.predict(dist); fusion.predict(dist, ref)\n"
        "report['predict'] = loaded(('tensorflow', 'keras', 'torch'))\n"
        "print(json.dumps(report))\n"
    )
    report = json.loads(run_fresh_python(code).strip().splitlines()[-1])
    assert report == {"backbones": [], "features": [], "predict": []}


def test_backbones_source_imports_nothing_from_fusion() -> None:
    # The grep half of the layering rule: no import of fusion anywhere in backbones/,
    # not even inside a function (where the fresh-process check above cannot see it).
    pattern = re.compile(r"^\s*(from\s+fusion[\s.]|import\s+fusion\b)", re.MULTILINE)
    offenders = [str(path.relative_to(REPO_ROOT))
                 for path in sorted((REPO_ROOT / "backbones").rglob("*.py"))
                 if pattern.search(path.read_text())]
    assert offenders == []


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

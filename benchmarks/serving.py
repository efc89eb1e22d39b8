"""Serving benchmark: import time, cold start, memory, Keras vs LiteRT, fused throughput.

Usage::

    python benchmarks/serving.py [--runs 5] [--skip-keras]

Everything that measures start-up runs in fresh processes (median of ``--runs``):
``import fusion``; cold start = import + load a preset's no-reference bundle + first
prediction of a 500×500 CLIVE image; resident memory (peak RSS) after it, for each preset
(``accurate``, ``fast``). Then, in this process: each registered backbone's ms per patch
under Keras+TensorFlow and under the LiteRT runtime (batch 9, the default patch count);
each preset's fused no-reference images/s (500×500, 20 CLIVE images, decode included) and
full-reference pairs/s (512×384), warm, one process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))


def _fresh(code: str) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(result.stdout.strip().splitlines()[-1])


_IMPORT = """
import time, json; t = time.perf_counter(); import fusion
print(json.dumps({"import_s": time.perf_counter() - t}))
"""

_COLD = """
import time, json, resource, sys; t = time.perf_counter()
import fusion
result = fusion.predict({image!r}, preset={preset!r})
elapsed = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
heavy = [m for m in ("tensorflow", "keras") if m in sys.modules]
print(json.dumps({{"cold_s": elapsed, "rss_mb": rss, "heavy": len(heavy)}}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-keras", action="store_true")
    args = parser.parse_args(argv)

    import numpy as np

    from fusion.api import PRESETS
    from fusion.datasets import read_manifest

    clive = read_manifest(SHARED / "clive" / "manifest.csv")
    images = [str(item.image) for item in clive[:20]]
    imports = [_fresh(_IMPORT)["import_s"] for _ in range(args.runs)]
    print(f"| measurement (fresh processes, median of {args.runs}) | value |")
    print("|---|---:|")
    print(f"| `import fusion` | {statistics.median(imports):.3f} s |")
    for preset in PRESETS:
        colds = [_fresh(_COLD.format(image=images[i], preset=preset))
                 for i in range(args.runs)]
        print(f"| {preset}: cold start: import + load its NR bundle + first 500×500 "
              f"prediction | {statistics.median(c['cold_s'] for c in colds):.2f} s |")
        print(f"| {preset}: peak resident memory after the first prediction | "
              f"{statistics.median(c['rss_mb'] for c in colds):.0f} MB |")
        print(f"| {preset}: TensorFlow/Keras modules loaded by predict | "
              f"{max(c['heavy'] for c in colds)} |")

    import fusion
    from fusion.api import default_model

    rows = []
    if not args.skip_keras:
        import backbones
        from backbones.export import export_litert
        from backbones.registry import spec_of
        from backbones.runtime import LiteRTBackbone

        for name in backbones.list_backbones():
            model = backbones.get_backbone(name)
            size = spec_of(name).patch_size
            batch = np.random.default_rng(0).random((9, size, size, 3)).astype(np.float32)
            model(batch, training=False)
            start = time.perf_counter()
            for _ in range(3):
                model(batch, training=False)
            keras_ms = (time.perf_counter() - start) / 27 * 1e3
            with tempfile.TemporaryDirectory() as tmp:
                runtime = LiteRTBackbone(export_litert(model, Path(tmp) / "m.tflite"))
                runtime(batch)
                start = time.perf_counter()
                for _ in range(5):
                    runtime(batch)
                lite_ms = (time.perf_counter() - start) / 45 * 1e3
            rows.append((name, size, model.count_params(), keras_ms, lite_ms))
        print("\n| backbone (NR) | patch | parameters | Keras+TF ms/patch | LiteRT ms/patch | "
              "speed-up | LiteRT patches/s |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, size, params, keras_ms, lite_ms in rows:
            print(f"| {name} | {size} | {params / 1e6:.2f} M | {keras_ms:.1f} | {lite_ms:.2f} | "
                  f"{keras_ms / lite_ms:.1f}× | {1000 / lite_ms:.0f} |")

    nr_rates = {}
    for preset in PRESETS:
        nr = default_model("nr", preset=preset)
        nr.predict(images[0])
        start = time.perf_counter()
        for path in images:
            nr.predict(path)
        nr_rates[preset] = len(images) / (time.perf_counter() - start)
    pairs_root = SHARED / "reference_values" / "tid2013_pairs"
    pairs = [(str(pairs_root / "dist" / p.name), str(p))
             for p in sorted((pairs_root / "ref").glob("*.bmp"))]
    fr = default_model("fr")
    fr.predict(*pairs[0])
    start = time.perf_counter()
    for _ in range(4):
        for dist, ref in pairs:
            fr.predict(dist, ref)
    fr_rate = 4 * len(pairs) / (time.perf_counter() - start)
    print("\n| fused model, warm, one process | rate |")
    print("|---|---:|")
    for preset, rate in nr_rates.items():
        print(f"| no-reference, {preset}, 500×500 CLIVE images (decode included) | "
              f"{rate:.1f} images/s |")
    print(f"| full-reference, 512×384 TID2013 pairs (decode included) | {fr_rate:.1f} pairs/s |")
    _ = fusion
    return 0


if __name__ == "__main__":
    sys.exit(main())

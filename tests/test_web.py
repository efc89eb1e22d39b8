"""The local web page and JSON API: the test client, then a real browser."""

from __future__ import annotations

import base64
import io
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

import fusion
from fusion.examples import example_paths

pytest.importorskip("fastapi", reason="the web tests need the web extra")
from fastapi.testclient import TestClient

from fusion.web import create_app

REFERENCE, DISTORTED = example_paths("coffee_jpeg")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app()) as test_client:
        yield test_client


def _files(image: Path | bytes, reference: Path | bytes | None = None,
           names: tuple[str, str] = ("distorted.png", "reference.png")) -> dict[str, object]:
    def part(data: Path | bytes, name: str) -> tuple[str, bytes, str]:
        return (name, data.read_bytes() if isinstance(data, Path) else data, "image/png")

    files = {"image": part(image, names[0])}
    if reference is not None:
        files["reference"] = part(reference, names[1])
    return files


def test_health_models_and_schema(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    models = client.get("/v1/models").json()["models"]
    assert {m["mode"] for m in models} == {"nr", "fr"}
    assert all(m["name"].startswith("default_") for m in models)
    schema = client.get("/openapi.json").json()
    assert "/v1/predict" in schema["paths"] and "/v1/models" in schema["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "Drop images here" in page.text


def test_predict_in_both_modes_equals_the_library(client: TestClient) -> None:
    no_reference = client.post("/v1/predict", files=_files(DISTORTED)).json()
    expected = fusion.predict(DISTORTED)
    assert no_reference["mode"] == "nr" and no_reference["model"] == expected.model
    assert no_reference["score"] == pytest.approx(expected.score, abs=1e-9)
    assert no_reference["interval"] == pytest.approx(list(expected.interval), abs=1e-9)
    assert no_reference["input"] == {"image": "distorted.png", "reference": None}
    full = client.post("/v1/predict", files=_files(DISTORTED, REFERENCE)).json()
    assert full["mode"] == "fr"
    assert full["score"] == pytest.approx(fusion.predict(DISTORTED, REFERENCE).score,
                                          abs=1e-9)
    assert full["components"]["psnr"] == pytest.approx(fusion.psnr(REFERENCE, DISTORTED))
    diagnostics = fusion.predict(DISTORTED, REFERENCE).diagnostics
    assert diagnostics is not None and full["diagnostics"] == diagnostics.to_dict()


def test_quality_map_comes_as_a_png(client: TestClient) -> None:
    payload = client.post("/v1/predict", files=_files(DISTORTED),
                          data={"quality_map": "true"}).json()
    prefix = "data:image/png;base64,"
    assert payload["quality_map_png"].startswith(prefix)
    overlay = PILImage.open(io.BytesIO(base64.b64decode(payload["quality_map_png"][
        len(prefix):])))
    assert overlay.size == (320, 240)
    plain = client.post("/v1/predict", files=_files(DISTORTED)).json()
    assert "quality_map_png" not in plain


def test_unusable_images_are_400_with_the_library_message(client: TestClient) -> None:
    corrupt = DISTORTED.read_bytes()[:200]
    response = client.post("/v1/predict", files=_files(corrupt, names=("photo.png", "")))
    assert response.status_code == 400
    error = response.json()["error"]
    assert "photo.png" in error and "corrupt or truncated" in error
    assert "fusion-web-" not in error  # the upload's name, not our temporary folder
    small = io.BytesIO()
    PILImage.open(DISTORTED).crop((0, 0, 300, 200)).save(small, format="PNG")
    mismatch = client.post("/v1/predict", files=_files(small.getvalue(), REFERENCE))
    assert mismatch.status_code == 400 and "reference has shape" in mismatch.json()["error"]
    empty = client.post("/v1/predict", files=_files(b""))
    assert empty.status_code == 400 and "empty file" in empty.json()["error"]


def test_bad_fields_are_422(client: TestClient) -> None:
    missing = client.post("/v1/predict", data={"quality_map": "true"})
    assert missing.status_code == 422 and "image" in missing.json()["error"]
    wrong = client.post("/v1/predict", files=_files(DISTORTED), data={"quality_map": "maybe"})
    assert wrong.status_code == 422 and "quality_map" in wrong.json()["error"]


def test_requests_over_the_upload_limit_are_413() -> None:
    with TestClient(create_app(max_upload_bytes=10_000)) as small:
        declared = small.post("/v1/predict", files=_files(DISTORTED))  # 60 KB
        assert declared.status_code == 413 and "upload limit" in declared.json()["error"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the stream is counted
            yield (b'--zzz\r\nContent-Disposition: form-data; name="image"; '
                   b'filename="big.png"\r\nContent-Type: image/png\r\n\r\n')
            for _ in range(20):
                yield b"x" * 1_000

        streamed = small.post("/v1/predict", content=chunks(), headers={
            "content-type": "multipart/form-data; boundary=zzz"})
        assert streamed.status_code == 413
        assert small.get("/healthz").status_code == 200


def test_nothing_is_left_in_the_temporary_folder(client: TestClient, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    client.post("/v1/predict", files=_files(DISTORTED, REFERENCE))
    client.post("/v1/predict", files=_files(b"not an image"))
    assert list(tmp_path.iterdir()) == []


def test_a_single_bundle_server_names_its_mode(tmp_path: Path) -> None:
    bundle = fusion.api.default_bundle_path("nr")
    with TestClient(create_app(str(bundle))) as nr_only:
        response = nr_only.post("/v1/predict", files=_files(DISTORTED, REFERENCE))
        assert response.status_code == 400
        assert "no-reference model" in response.json()["error"]
        assert nr_only.post("/v1/predict", files=_files(DISTORTED)).status_code == 200


# ------------------------------------------------------------------ a real browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start within 60 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.mark.slow
def test_the_page_in_a_real_browser(server_url: str, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (.ci/run installs Debian's chromium)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(DISTORTED.read_bytes()[:300])
    same_name_reference = tmp_path / DISTORTED.name
    shutil.copyfile(REFERENCE, same_name_reference)
    expected = fusion.predict(DISTORTED, REFERENCE).score
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(server_url)
            page.set_input_files("#references", str(same_name_reference))
            page.set_input_files("#images", [str(DISTORTED), str(corrupt)])
            row = page.locator(f'tr[data-name="{DISTORTED.name}"] td.score')
            row.wait_for(timeout=60_000)
            assert row.inner_text() == f"{expected:.1f}"
            assert "full-reference" in page.locator(
                f'tr[data-name="{DISTORTED.name}"]').inner_text()
            diagnosis = fusion.predict(DISTORTED, REFERENCE).diagnostics
            assert diagnosis is not None
            family = page.locator(f'tr[data-name="{DISTORTED.name}"] td.family').inner_text()
            assert family.startswith(diagnosis.family)
            card = page.locator(f'.card[data-name="{DISTORTED.name}"] .diagnosis')
            assert f"dominant distortion: {diagnosis.family}" in card.inner_text()
            overlay = page.locator(f'.card[data-name="{DISTORTED.name}"] img.overlay')
            overlay.wait_for(timeout=30_000)
            assert page.evaluate("img => img.complete && img.naturalWidth",
                                 overlay.element_handle()) == 320
            error = page.locator('tr[data-name="broken.png"] td.error')
            error.wait_for(timeout=30_000)
            assert "corrupt or truncated" in error.inner_text()
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "page.png").stat().st_size > 10_000


def test_uploaded_pixels_are_scored_not_a_copy(client: TestClient) -> None:
    # A different image gives a different score (the response belongs to its upload).
    noisy = io.BytesIO()
    rng = np.random.default_rng(0)
    pixels = np.asarray(PILImage.open(DISTORTED).convert("RGB"), np.int16)
    PILImage.fromarray(np.clip(pixels + rng.integers(-40, 40, pixels.shape), 0, 255)
                       .astype(np.uint8)).save(noisy, format="PNG")
    first = client.post("/v1/predict", files=_files(DISTORTED)).json()["score"]
    second = client.post("/v1/predict", files=_files(noisy.getvalue())).json()["score"]
    assert first != second

"""The ASGI application behind ``fusion-iqa serve``: one page and a small JSON API.

Importing this module needs the ``web`` extra (FastAPI, uvicorn, python-multipart); it
raises an :class:`ImportError` naming the extra otherwise.

Routes
------
``GET /``
    The page (``static/index.html``): drop images (and references), see the scores.
``POST /v1/predict``
    Multipart form: ``image`` (file, required), ``reference`` (file, optional; makes it a
    full-reference prediction), ``quality_map`` (``true``/``false``, optional). Returns
    :meth:`fusion.Prediction.to_dict` plus ``input`` (the uploaded file names) and, when
    asked, ``quality_map_png`` (the overlay as a PNG data URL).
``GET /v1/models``
    The models this server scores with, and their held-out metrics.
``GET /healthz``
    ``{"status": "ok"}`` once the models are loaded.
``GET /openapi.json``, ``GET /docs``
    The API's OpenAPI schema and its interactive page.

Errors are JSON, ``{"error": message}``, with the library's own message: 400 for an
image that cannot be read or used (corrupt file, shape mismatch, too small …), 413 for
a request over the upload limit (50 MB by default), 422 for a missing or malformed
field. Uploads are written only to a per-request temporary folder, removed after the
request, so that the library reads them exactly as it reads files.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import re
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

try:  # module level: FastAPI resolves the route annotations against these globals
    from fastapi import FastAPI, File, Form, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("the web page needs the web extra: pip install 'fusion-iqa[web]'"
                      ) from exc

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "create_app", "create_app_from_environment"]

#: Largest request body accepted (bytes); larger requests get 413.
DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class _UploadLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _send_json(send, 413, {"error": self._message()})
            return
        seen = 0
        over = False  # the streamed body went over the limit
        answered = False

        async def limited_receive() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    raise _TooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            # Once over the limit, whatever the app answers (FastAPI turns the failed
            # body read into a 400) is replaced by one 413.
            nonlocal answered
            if not over:
                answered = answered or message["type"] == "http.response.start"
                await send(message)
            elif not answered and message["type"] == "http.response.start":
                answered = True
                await _send_json(send, 413, {"error": self._message()})

        with contextlib.suppress(_TooLargeError):
            await self.app(scope, limited_receive, guarded_send)
        if over and not answered:
            await _send_json(send, 413, {"error": self._message()})

    def _message(self) -> str:
        return (f"the request is larger than the upload limit of {self.limit:,} bytes "
                "(fusion-iqa serve --max-upload-mb)")


class _TooLargeError(Exception):
    pass


async def _send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    import json

    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class _Models:
    """The model(s) a server scores with, loaded once per worker process."""

    def __init__(self, bundle: str | None) -> None:
        import fusion
        from fusion.api import default_model

        if bundle is not None:
            model = fusion.load(bundle)
            self.by_mode = {model.mode: model}
        else:
            self.by_mode = {mode: default_model(mode) for mode in ("nr", "fr")}

    def for_mode(self, mode: str) -> Any:
        if mode not in self.by_mode:
            only = next(iter(self.by_mode.values()))
            kind = "no-reference" if only.mode == "nr" else "full-reference"
            raise ValueError(f"this server scores with the {kind} model {only.name}: "
                             + ("send an image without a reference" if only.mode == "nr"
                                else "send an image and its reference"))
        return self.by_mode[mode]

    def describe(self) -> list[dict[str, Any]]:
        out = []
        for model in self.by_mode.values():
            meta = model.metadata or {}
            out.append({"name": model.name, "mode": model.mode, "created": meta.get("created"),
                        "extractors": [e.key for e in model.extractors],
                        "training_data": meta.get("training_data"),
                        "heldout_metrics": {k: v for k, v in
                                            (meta.get("heldout_metrics") or {}).items()
                                            if k in ("n", "fused", "interval", "gate")}})
        return out


def create_app(model: str | None = None, *,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               scoring_threads: int | None = None) -> Any:
    """The ASGI application (FastAPI): the page, ``/v1/predict``, ``/v1/models``, ``/healthz``.

    Parameters
    ----------
    model : str, optional
        A bundle to score with (its mode only); default: the embedded defaults of both
        modes. ``FUSION_IQA_MODEL`` gives it when the app is built by uvicorn workers.
    max_upload_bytes : int
        Largest request accepted (413 above); ``FUSION_IQA_MAX_UPLOAD_BYTES`` likewise.
    scoring_threads : int, optional
        Predictions computed at once (default: the number of CPU cores); more requests
        wait their turn.

    Raises
    ------
    fusion.BundleError
        If ``model`` is not a valid bundle.
    """
    models = _Models(model)
    # A fixed set of scoring threads: each thread keeps its own LiteRT interpreters, so
    # a bounded set keeps memory flat however many clients are connected.
    scorers = ThreadPoolExecutor(max_workers=scoring_threads or os.cpu_count() or 1,
                                 thread_name_prefix="fusion-score")
    app = FastAPI(title="fusion-iqa", version=_version(),
                  description="Image quality on 0–100 (higher = better), with an interval, "
                              "for an image alone or against its reference.")

    @app.exception_handler(RequestValidationError)
    async def bad_field(_: Any, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                             for e in exc.errors())
        return JSONResponse({"error": f"bad request fields: {problems}"}, status_code=422)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        html = resources.files("fusion.web").joinpath("static/index.html").read_text("utf-8")
        return HTMLResponse(html)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the models are loaded."""
        return {"status": "ok"}

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        """The models this server scores with."""
        return {"models": models.describe()}

    @app.post("/v1/predict", responses={400: {"description": "unusable image"},
                                        413: {"description": "over the upload limit"},
                                        422: {"description": "missing or bad field"}})
    async def predict(
            image: Annotated[UploadFile, File(description="the image to score")],
            reference: Annotated[UploadFile | None,
                                 File(description="its reference (full-reference)")] = None,
            quality_map: Annotated[bool, Form(description="also return the overlay")] = False
            ) -> Any:
        """Score one image (no reference) or one pair (with ``reference``)."""
        loop = asyncio.get_running_loop()
        status, payload = await loop.run_in_executor(
            scorers, _score_upload, models, image, reference, quality_map)
        return payload if status == 200 else JSONResponse(payload, status_code=status)

    app.state.models = models
    return _UploadLimit(app, max_upload_bytes) if max_upload_bytes else app


def _score_upload(models: _Models, image: Any, reference: Any,
                  quality_map: bool) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON payload) of one upload, computed in a scoring thread."""
    with tempfile.TemporaryDirectory(prefix="fusion-web-") as folder:
        try:
            image_path = _store(image, Path(folder), "image")
            reference_path = None if reference is None else _store(
                reference, Path(folder), "reference")
            chosen = models.for_mode("nr" if reference_path is None else "fr")
            result = chosen.predict(image_path, reference_path, quality_map=quality_map)
            payload = result.to_dict()
            payload["input"] = {"image": image.filename,
                                "reference": None if reference is None else reference.filename}
            if quality_map and result.quality_map is not None:
                payload["quality_map_png"] = _png_data_url(
                    result.quality_map.overlay(image_path))
        except (ValueError, OSError) as exc:
            message = str(exc)
            for role in ("image", "reference"):  # name the upload, not our folder
                message = message.replace(os.path.join(folder, role) + os.sep, "")
            return 400, {"error": message}
    return 200, payload


def create_app_from_environment() -> Any:
    """:func:`create_app` configured by ``FUSION_IQA_MODEL`` and ``…_MAX_UPLOAD_BYTES``.

    What ``fusion-iqa serve --workers N`` gives uvicorn (``factory=True``), so that
    each worker process loads its own models.
    """
    limit = os.environ.get("FUSION_IQA_MAX_UPLOAD_BYTES")
    return create_app(os.environ.get("FUSION_IQA_MODEL") or None,
                      max_upload_bytes=int(limit) if limit else DEFAULT_MAX_UPLOAD_BYTES)


def _store(upload: Any, folder: Path, role: str) -> Path:
    """Write an upload into ``folder`` under its (sanitised) name; refuse an empty one."""
    name = _SAFE_NAME.sub("_", Path(upload.filename or role).name).strip("._") or role
    target = folder / role / name
    target.parent.mkdir()
    data = upload.file.read()
    if not data:
        raise ValueError(f"{role} {upload.filename!r} is an empty file")
    target.write_bytes(data)
    return target


def _png_data_url(picture: Any) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _version() -> str:
    from fusion._version import __version__

    return __version__


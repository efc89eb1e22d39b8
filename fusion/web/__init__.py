"""A local web page and JSON API for scoring images (``fusion-iqa serve``; ``web`` extra).

:func:`create_app` builds the ASGI application (FastAPI on Starlette); ``fusion-iqa
serve`` runs it with uvicorn, bound to 127.0.0.1 unless told otherwise. Every answer is
what :func:`fusion.predict` (or the given bundle's ``predict``) returns, with the same
error messages.
"""

from fusion.web.app import DEFAULT_MAX_UPLOAD_BYTES, create_app

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "create_app"]

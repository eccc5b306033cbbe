"""The predictor's HTTP app (FastAPI, from the ``serve`` extra).

``POST /predict`` takes a batch of windows as JSON (``{"windows": [[[...], ...], ...]}``) or as an ``.npz``
upload (the request body, content type ``application/x-npz`` or ``application/octet-stream``, holding a
``windows`` array, as a run's ``*_windows.npz`` does) and answers :meth:`runtime.serve.Predictor.predict`'s
result as JSON; a malformed request gets 400 with ``{"error": message}``. ``GET /health`` describes the
loaded checkpoint. Imported only by :meth:`runtime.serve.Predictor.web`, so the predictor itself needs no
FastAPI.
"""

import io
import json
import zipfile
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from runtime.serve import ServeError

NPZ_TYPES = ("application/x-npz", "application/octet-stream")
MAX_BODY_BYTES = 256 * 1024 * 1024


def make_app(predictor: Any) -> FastAPI:
    """The routes above around ``predictor`` (no ``from __future__ import annotations`` here: FastAPI reads
    the handlers' annotations at run time)."""
    app = FastAPI(title="mtc predictor")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", **predictor.describe()}

    @app.post("/predict")
    async def predict(request: Request):
        body = await request.body()
        try:
            windows = read_windows(body, request.headers.get("content-type", ""))
            return predictor.predict(windows)
        except ServeError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return app


def read_windows(body: bytes, content_type: str) -> Any:
    """The windows of a request body: JSON ``{"windows": ...}``, or an .npz with a ``windows`` array."""
    if len(body) > MAX_BODY_BYTES:
        raise ServeError(f"request body of {len(body)} bytes; at most {MAX_BODY_BYTES}")
    kind = content_type.split(";")[0].strip().lower()
    if kind in NPZ_TYPES:
        return _npz_windows(body)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ServeError(
            'the body is not JSON; send {"windows": [...]} or an .npz (application/x-npz)'
        ) from None
    if not isinstance(data, dict) or "windows" not in data:
        raise ServeError('the JSON body needs a "windows" key: {"windows": [[[...channel...], ...], ...]}')
    return data["windows"]


def _npz_windows(body: bytes) -> np.ndarray:
    try:
        archive = np.load(io.BytesIO(body), allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        raise ServeError("the body is not a readable .npz file") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ServeError("the body is a single .npy array; send an .npz holding a 'windows' array")
    with archive:
        if "windows" not in archive.files:
            raise ServeError(
                f"the .npz has no 'windows' array (it has: {', '.join(archive.files) or 'none'})"
            )
        return archive["windows"]

"""The playground's HTTP server: a Starlette app (JSON endpoints, server-sent events for live
training, the single-page app's static files), served by uvicorn on 127.0.0.1 only.

It opens no outside connection: every asset is in ``lamina/playground/static``. A ``Host``
check refuses any host name but the loopback ones (so another web page cannot reach it through
DNS rebinding); uploads are size-limited and parsed as numbers or images, never as code; run
folders are read through lamina's own loaders (``lamina.train.run.load_run``).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections import OrderedDict
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import conv_shape
from .data import MAX_CSV_BYTES, parse_csv
from .export import python_code, weights_bytes
from .mlp import ACTIVATIONS, DEFAULTS, LOSSES, OPTIMIZERS, Session

__all__ = ["create_app", "HOST"]

HOST = "127.0.0.1"
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MAX_SESSIONS = 32
MAX_IMAGE_BYTES = 4 * 1024 * 1024


class _Store:
    """The playground sessions and uploads of this server, the oldest dropped past MAX_SESSIONS."""

    def __init__(self) -> None:
        self.sessions: OrderedDict[str, Session] = OrderedDict()
        self.uploads: OrderedDict[str, Any] = OrderedDict()

    def put(self, table: OrderedDict[str, Any], key: str, value: Any) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > MAX_SESSIONS:
            table.popitem(last=False)

    def session(self, key: Any) -> Session:
        if key not in self.sessions:
            raise LookupError(f"playground: no session {key!r} (it ended or the server restarted; reload the page)")
        return self.sessions[key]


async def _read_body(request: Request, limit: int, what: str) -> bytes:
    """The request body, refused once it grows past ``limit`` bytes (before it is all read)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ValueError(f"{what}: {declared} bytes, more than the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ValueError(f"{what}: more than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json(request: Request) -> dict[str, Any]:
    body = await _read_body(request, 1024 * 1024, "request")
    try:
        data = json.loads(body or b"{}")
    except json.JSONDecodeError as e:
        raise ValueError(f"request: expected a JSON object, got invalid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"request: expected a JSON object, got {type(data).__name__}")
    return data


def create_app(runs_dir: str = "runs", allowed_hosts: list[str] | None = None) -> Starlette:
    """The playground's ASGI app; ``runs_dir`` is the folder whose run folders the CNN explainer lists."""
    store = _Store()
    explainers: list[Any] = []

    def explainer() -> Any:  # built on first use: the MLP playground needs none of it
        from .cnn import Explainer

        if not explainers:
            explainers.append(Explainer(runs_dir))
        return explainers[0]

    async def index(request: Request) -> Response:
        return FileResponse(os.path.join(STATIC, "index.html"))

    async def meta(request: Request) -> Response:
        from .data import DATASETS, FEATURES

        return JSONResponse({"datasets": list(DATASETS), "features": list(FEATURES), "activations": list(ACTIVATIONS),
                             "losses": list(LOSSES), "optimizers": list(OPTIMIZERS), "defaults": DEFAULTS})

    def _start(config: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        session = Session(config, store.uploads)
        key = key or secrets.token_hex(8)
        store.put(store.sessions, key, session)
        return {"id": key, "config": session.config, "points": session.points_json(), "snapshot": session.snapshot()}

    async def new_session(request: Request) -> Response:
        data = await _json(request)
        return JSONResponse(await run_in_threadpool(_start, data.get("config") or {}))

    async def step(request: Request) -> Response:
        data = await _json(request)
        session = store.session(data.get("id"))
        epochs = data.get("epochs", 1)
        if not isinstance(epochs, int) or isinstance(epochs, bool) or not 1 <= epochs <= 1000:
            raise ValueError(f"step: epochs must be an integer in [1, 1000], got {epochs!r}")
        await run_in_threadpool(session.train_epochs, epochs)
        return JSONResponse(await run_in_threadpool(session.snapshot))

    async def reset(request: Request) -> Response:
        data = await _json(request)
        key = data.get("id")
        session = store.session(key)
        return JSONResponse(await run_in_threadpool(_start, session.config, key))

    async def stream(request: Request) -> Response:
        session = store.session(request.query_params.get("id"))
        limit = request.query_params.get("max_events", "")
        max_events = int(limit) if limit.isdigit() else None

        async def events() -> Any:
            sent = 0
            while max_events is None or sent < max_events:
                if await request.is_disconnected():
                    break
                await run_in_threadpool(session.train_epochs, 1)
                snap = await run_in_threadpool(session.snapshot, False)
                yield f"event: snapshot\ndata: {json.dumps(snap)}\n\n"
                sent += 1
                await asyncio.sleep(0)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def upload(request: Request) -> Response:
        body = await _read_body(request, MAX_CSV_BYTES, "CSV upload")
        X, y = parse_csv(body, request.query_params.get("name", "CSV upload"))
        key = secrets.token_hex(8)
        store.put(store.uploads, key, (X, y))
        return JSONResponse({"csv": key, "n": len(X), "classes": int(y.max()) + 1})

    async def export_code(request: Request) -> Response:
        session = store.session(request.query_params.get("id"))
        return PlainTextResponse(python_code(session), media_type="text/x-python",
                                 headers={"Content-Disposition": 'attachment; filename="playground.py"'})

    async def export_weights(request: Request) -> Response:
        session = store.session(request.query_params.get("id"))
        return Response(await run_in_threadpool(weights_bytes, session), media_type="application/octet-stream",
                        headers={"Content-Disposition": 'attachment; filename="playground.lamina"'})

    async def cnn_runs(request: Request) -> Response:
        return JSONResponse({"runs": await run_in_threadpool(explainer().list_runs)})

    async def cnn_upload(request: Request) -> Response:
        body = await _read_body(request, MAX_IMAGE_BYTES, "image upload")
        key = secrets.token_hex(8)
        from .cnn import read_upload

        image = await run_in_threadpool(read_upload, body)
        store.put(store.uploads, key, image)
        return JSONResponse({"image": key})

    def _cnn_image(data: dict[str, Any]) -> Any:
        if data.get("upload") is not None:
            if data["upload"] not in store.uploads:
                raise LookupError("CNN explainer: unknown image upload (upload it again)")
            return store.uploads[data["upload"]]
        return data.get("index", 0)

    async def cnn_forward(request: Request) -> Response:
        data = await _json(request)
        return JSONResponse(await run_in_threadpool(explainer().forward, data.get("run"), _cnn_image(data)))

    async def cnn_unit(request: Request) -> Response:
        data = await _json(request)
        return JSONResponse(await run_in_threadpool(explainer().unit, data.get("run"), _cnn_image(data),
                                                    data.get("layer"), data.get("channel", 0), data.get("y", 0),
                                                    data.get("x", 0)))

    async def cnn_explain(request: Request) -> Response:
        data = await _json(request)
        return JSONResponse(await run_in_threadpool(explainer().explain, data.get("run"), _cnn_image(data),
                                                    data.get("target")))

    async def conv(request: Request) -> Response:
        return JSONResponse(conv_shape.describe(dict(request.query_params)))

    async def bad_request(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": " ".join(str(exc).split())}, status_code=400)

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": " ".join(str(exc.args[0] if exc.args else exc).split())}, status_code=404)

    routes = [
        Route("/", index), Route("/api/meta", meta),
        Route("/api/mlp/session", new_session, methods=["POST"]), Route("/api/mlp/step", step, methods=["POST"]),
        Route("/api/mlp/reset", reset, methods=["POST"]), Route("/api/mlp/stream", stream),
        Route("/api/mlp/upload", upload, methods=["POST"]), Route("/api/mlp/export/code", export_code),
        Route("/api/mlp/export/weights", export_weights),
        Route("/api/cnn/runs", cnn_runs), Route("/api/cnn/upload", cnn_upload, methods=["POST"]),
        Route("/api/cnn/forward", cnn_forward, methods=["POST"]), Route("/api/cnn/unit", cnn_unit, methods=["POST"]),
        Route("/api/cnn/explain", cnn_explain, methods=["POST"]), Route("/api/conv", conv),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    hosts = allowed_hosts or [HOST, "localhost"]
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
                     exception_handlers={ValueError: bad_request, LookupError: not_found,
                                         FileNotFoundError: not_found})


def serve(port: int = 8765, open_browser: bool = True, runs_dir: str = "runs") -> None:
    """Serve the playground on http://127.0.0.1:PORT until Ctrl-C (and open it in the browser).

    The socket is bound here, to the loopback address only, so that a port in use raises OSError
    (uvicorn would exit the process instead); ``port=0`` takes a free one."""
    import socket
    import threading
    import webbrowser

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    url = f"http://{HOST}:{sock.getsockname()[1]}/"
    server = uvicorn.Server(uvicorn.Config(create_app(runs_dir), log_level="warning"))
    print(f"lamina playground: {url} (Ctrl-C stops it)", flush=True)
    if open_browser:
        def _open() -> None:
            while not server.started and not server.should_exit:
                threading.Event().wait(0.05)
            if server.started:
                webbrowser.open(url)
        threading.Thread(target=_open, daemon=True).start()
    server.run(sockets=[sock])

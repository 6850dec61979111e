"""Floor 6: ``lamina playground``, the library in the browser.

A local server (Starlette on uvicorn, 127.0.0.1 only) serving a single-page app whose assets all
ship in ``lamina/playground/static``: the MLP playground (TensorFlow Playground's views, trained by
lamina with any of its layers, losses and optimizers), the CNN explainer for a run folder, and the
conv-arithmetic explorer. Needs the ``playground`` extra (``pip install lamina[playground]``).
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_playground_parser"]


def _run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in [0, 65535], got {args.port}")
    try:
        from .server import serve
    except ImportError as e:
        raise ValueError(f"the playground needs Starlette and uvicorn: pip install 'lamina[playground]' "
                         f"({e})") from None
    try:
        serve(port=args.port, open_browser=not args.no_browser, runs_dir=args.runs)
    except OSError as e:  # the port is taken, or not ours to bind
        raise ValueError(f"cannot serve on 127.0.0.1:{args.port}: {e.strerror or e}") from None
    return 0


def add_playground_parser(sub: Any) -> None:
    """Add ``lamina playground`` to the command line's sub-commands."""
    p = sub.add_parser("playground", help="the MLP playground, CNN explainer and conv arithmetic in the browser",
                       description="Serve the lamina playground on http://127.0.0.1:PORT (this machine only; "
                                   "no outside connection) and open it in the browser.")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765)")
    p.add_argument("--no-browser", dest="no_browser", action="store_true", help="do not open a browser")
    p.add_argument("--runs", default="runs", help="folder of run folders for the CNN explainer (default runs/)")
    p.set_defaults(func=_run)

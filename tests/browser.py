"""Serving the web chat on a free local port and driving it in Debian's Chromium, with nothing downloaded:
shared by the browser tests (app/test_ui.py) and the README screenshot (benchmarks/screenshot.py)."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

# As root, without a sandbox or GPU; without the background-networking flags Chromium keeps dialling
# Google's hosts, which this machine's closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_executable() -> str | None:
    """$CHROMIUM, else `chromium` on the PATH, else Debian's /usr/bin/chromium; None when it is not there."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return path if Path(path).is_file() else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

"""Follow the documents folder and refresh the index when its files change: polled, debounced, no extra dependency.

Polling looks at file names, sizes and modification and change times only, so it is cheap even for large folders.
A change is acted on once the folder has stayed the same for `settle` seconds (an editor saving a file
in several writes, or a copy of many files, gives one refresh).

Usage example:
    watch_folder(bot, lambda report: print(report.summary()))     # until Ctrl-C
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from ..config import Config
from ..errors import ChatbotError
from .indexer import IndexReport, scan_documents

log = logging.getLogger("chatbot")

Snapshot = dict[str, tuple[int, int, int]]


class Indexed(Protocol):
    """What is watched: a config naming the documents folder, and `index()`, which brings the index up to date
    and says what it did (a Chatbot is one; this module, below it, knows it by this shape only)."""

    config: Config

    def index(self, force: bool = False) -> IndexReport: ...


def snapshot(bot: Indexed) -> Snapshot:
    """Path -> (size, modification and change time) of every document file; empty when the folder is missing."""
    try:
        scan = scan_documents(bot.config)
    except ChatbotError:
        return {}
    return {info.path: (info.size, info.mtime_ns, info.ctime_ns) for info in scan.files}


def watch_folder(
    bot: Indexed,
    on_report: Callable[[IndexReport], None],
    interval: float = 1.0,
    settle: float = 1.0,
    force: bool = False,
) -> None:
    """Refresh `bot`'s index now (rebuild it with force=True) and whenever the documents change, calling
    `on_report` after each refresh.

    Runs until interrupted (Ctrl-C), then returns. A refresh that fails with a user error (say, every
    document was deleted) is reported as a warning and watching goes on.
    """
    try:
        last = snapshot(bot)  # taken before the first refresh, so no change made during it is missed
        on_report(bot.index(force=force))
        log.info("watching %s for changes (Ctrl-C stops)", bot.config.paths.docs)
        while True:
            time.sleep(interval)
            current = snapshot(bot)
            if current == last:
                continue
            while True:  # wait until the folder stays the same for `settle` seconds
                time.sleep(settle)
                later = snapshot(bot)
                if later == current:
                    break
                current = later
            last = current
            try:
                on_report(bot.index())
            except ChatbotError as exc:
                log.warning("%s", exc)
    except KeyboardInterrupt:
        log.info("stopped watching")

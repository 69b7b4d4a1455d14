"""Serving the page: the port checked first, the model and index loaded, uploads turned off when the page is
shared beyond this machine without a password, and the example questions offered only where they are answered.

Usage example:
    from chatbot import Chatbot
    from chatbot.app.web.server import serve
    serve(Chatbot.from_config(), host="127.0.0.1", port=7860)       # blocks; Ctrl-C stops it
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from pathlib import Path

import gradio as gr

from ...answering.bot import Chatbot
from ...config import PROJECT_ROOT
from ...errors import ChatbotError
from .page import CSS, HEAD, THEME, build_app


def start(
    bot: Chatbot,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: tuple[str, str] | None = None,
    allow_uploads: bool = False,
) -> tuple[gr.Blocks, str]:
    """Load the model and index, then start the server without blocking; returns the app and its URL.

    Uploading and removing documents are off when the page listens beyond this machine without a password,
    unless `allow_uploads` (or config [ui] allow_uploads) says otherwise; see `uploads_refusal`.
    """
    check_port(host, port)  # before loading anything: a port in use is said at once, in our words
    bot.warm_up()  # the index and the model now, not on the first question
    off = uploads_refusal(host, auth, allow_uploads or bot.config.ui.allow_uploads, bot.config.ui.auth_env)
    app = build_app(bot, examples=offered_examples(bot), uploads_off=off)
    app.queue(max_size=256)
    try:
        _launch(app, bot, host, port, auth, off)
    except OSError as exc:  # taken since check_port looked: Gradio's message names its environment variable
        if "Cannot find empty port" in str(exc):
            raise ChatbotError(f"port {port} is in use; pass --port N") from None
        raise
    return app, app.local_url


def check_port(host: str, port: int) -> None:
    """ChatbotError, in one line, when the page could not listen on `host`:`port` (another program holds it)."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ChatbotError(f"cannot listen on {host}: {getattr(exc, 'strerror', None) or exc}") from None
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: a closed port's TIME_WAIT is free
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ChatbotError(f"port {port} is in use; pass --port N") from None
            raise ChatbotError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _launch(app: gr.Blocks, bot: Chatbot, host: str, port: int, auth: tuple[str, str] | None, off: str) -> None:
    app.launch(
        server_name=host,
        server_port=port,
        auth=auth,
        prevent_thread_lock=True,
        # With uploads off, Gradio's own upload route (which every Gradio app has) takes no file either.
        max_file_size=0 if off else int(bot.config.ui.max_upload_mb * 1024 * 1024),
        footer_links=["api"],
        css=CSS,
        head=HEAD,
        theme=THEME,
        show_error=True,
        quiet=True,
    )


def serve(
    bot: Chatbot,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: tuple[str, str] | None = None,
    allow_uploads: bool = False,
) -> None:
    """Run the web chat until interrupted."""
    app, url = start(bot, host=host, port=port, auth=auth, allow_uploads=allow_uploads)
    print(f"The chat is at {url} (Ctrl-C stops it)", flush=True)
    try:
        app.block_thread()
    finally:
        app.close()


def uploads_refusal(host: str, auth: tuple[str, str] | None, allow: bool, auth_env: str = "CHATBOT_AUTH") -> str:
    """Why the page may not upload or remove documents, or "" when it may: shared beyond this machine without a
    password, anyone who can reach it could change what it answers from, unless that is allowed explicitly."""
    if allow or auth or _is_loopback(host):
        return ""
    return (
        f"Adding and removing documents is turned off: this page listens on {host or 'every address'}, beyond this "
        f"machine, without a password, so anyone who can reach it could change its documents. Start it with "
        f"--auth USER:PASSWORD (or ${auth_env}) to turn them on, or with --allow-uploads to let every visitor "
        "add and remove uploads."
    )


def _is_loopback(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def offered_examples(bot: Chatbot) -> list[str]:
    """The example questions the page offers: [ui] examples, only when the documents folder is the one they
    were written for ([ui] examples_for; seeds/ when unset), and of those the ones the documents answer. A
    folder of one's own is offered none of another folder's examples, however its documents score them."""
    settings = bot.config.ui
    written_for = settings.examples_for if settings.examples_for is not None else PROJECT_ROOT / "seeds"
    if Path(written_for).resolve() != Path(bot.config.paths.docs).resolve():
        return []
    return answered_examples(bot, settings.examples)


def answered_examples(bot: Chatbot, questions: tuple[str, ...] | list[str]) -> list[str]:
    """The example questions that the documents answer (asked together once, as the page starts: a few
    milliseconds), so that a folder of one's own is not offered questions about another's documents."""
    if not questions:
        return []
    try:
        answers = bot.ask_batch(list(questions))
    except ChatbotError:
        return []
    return [question for question, answer in zip(questions, answers) if not answer.abstained]

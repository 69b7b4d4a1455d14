"""The page's Documents panel: the documents indexed and where each is kept; uploads added, removed and restored
(never the documents folder itself), indexed on a thread of their own while questions are answered from the
index as it was.

Usage example:
    update = DocumentUpdate(bot)
    panel = DocumentsPanel(bot, update, Uploads.of(bot.config))
    panel.render(app)                       # inside the page's gr.Blocks
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from ...answering.bot import Chatbot
from ...documents.load import UPLOADS
from ...errors import ChatbotError
from ...index.indexer import IndexReport
from ...index.uploads import Uploads, clean_name, size_text
from .render import escape, status_html


def documents_html(documents: list[dict[str, Any]], docs: Path | None = None, uploads: Path | None = None) -> str:
    """The indexed documents with where each is kept (the documents folder, or the uploads folder for those
    cited as .uploads/NAME), their sizes and sentences, as an escaped table under a line naming both folders."""
    folders = ""
    if docs is not None and uploads is not None:
        folders = (
            f'<p class="qa-meta">Documents folder: {escape(str(docs))} (never changed from this page). '
            f"Uploads: {escape(str(uploads))} (cited as {escape(UPLOADS)}NAME).</p>"
        )
    if not documents:
        return folders + '<p class="qa-meta">No documents are indexed.</p>'
    rows = "".join(
        f'<tr><td>{escape(doc["path"])}</td><td>{_kept_in(doc["path"])}</td>'
        f'<td class="qa-num">{size_text(doc["size"])}</td><td class="qa-num">{doc.get("sentences", 0):,}</td></tr>'
        for doc in documents
    )
    return (
        f'{folders}<table class="qa-docs"><thead><tr><th>Document</th><th>Kept in</th><th class="qa-num">Size</th>'
        f'<th class="qa-num">Sentences</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _kept_in(path: str) -> str:
    return "uploads" if path.startswith(UPLOADS) else "documents folder"


INDEXING = (
    "Updating the index of the documents; this can take minutes for a large file. Until it is done, questions "
    "are answered from the documents as they were, and say so."
)


UPDATING = (
    "The documents are being re-indexed after a document was added or removed. This answer comes from the "
    "documents as they were before that; ask again once it has finished for an answer that includes the change."
)


class DocumentUpdate:
    """An upload or removal re-indexing the documents (minutes for a large file). Meanwhile `Chatbot.ask`
    would wait for the new index; `answerer` offers the index as it was before instead, which answers at once,
    and a note to show with such answers, since they do not include the change."""

    def __init__(self, bot: Chatbot) -> None:
        self.bot = bot
        self.before: Chatbot | None = None

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Around changing the documents folder and indexing it; the index in use is kept aside first."""
        try:
            self.before = self.bot.pinned()
        except ChatbotError:
            self.before = None  # no index to answer from meanwhile: questions wait for the new one
        try:
            yield
        finally:
            self.before = None

    def answerer(self) -> tuple[Chatbot, str]:
        """The chatbot to ask now, and the note its answers need ("" for the up-to-date index)."""
        before = self.before
        return (before, UPDATING) if before is not None else (self.bot, "")


class IndexingRun:
    """`bot.index()` on a thread of its own, so that the page can show how far it has got while it runs.

    Usage example:
        run = IndexingRun(bot)
        for done, total in run.progress():   # texts embedded so far, of how many; a new pair at most every second
            ...
        run.report, run.error                # the IndexReport, or the ChatbotError that stopped it
    """

    def __init__(self, bot: Chatbot) -> None:
        self.report: IndexReport | None = None
        self.error: ChatbotError | None = None
        self._crash: BaseException | None = None
        self._done = self._total = 0
        self._since: tuple[float, int] | None = None  # (when, texts done) at the first report of the build
        self._thread = threading.Thread(target=self._run, args=(bot,), daemon=True)
        self._thread.start()

    def progress(self) -> Iterator[tuple[int, int]]:
        shown = 0
        while self._thread.is_alive():
            self._thread.join(1.0)
            if self._total and self._done != shown:
                shown = self._done
                yield shown, self._total
        if self._crash is not None:
            raise self._crash

    def _run(self, bot: Chatbot) -> None:
        try:
            self.report = bot.index(on_progress=self._note)
        except ChatbotError as exc:
            self.error = exc
        except BaseException as exc:  # noqa: BLE001 (handed to the page's thread, which reports it as Gradio does)
            self._crash = exc

    def pace(self) -> tuple[float, float] | None:
        """(texts embedded a second, seconds left at that rate), measured since the build began embedding;
        None until there is a rate to tell."""
        if self._since is None:
            return None
        started, first = self._since
        elapsed, done = time.monotonic() - started, self._done - first
        if done <= 0 or elapsed <= 0:
            return None
        rate = done / elapsed
        return rate, (self._total - self._done) / rate

    def _note(self, done: int, total: int) -> None:
        if self._since is None:
            self._since = (time.monotonic(), done)
        self._done, self._total = done, total


def duration_text(seconds: float) -> str:
    """A time left in words: "8 s", "3 min 5 s", "2 h 10 min"."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class DocumentsPanel:
    """The page's list of documents (each with where it is kept) and, unless uploads are off, uploading,
    removing and restoring uploads. Uploads go to the uploads folder (see uploads.py), never to the documents
    folder; only they can be removed, after a confirmation, and a removed one can be restored until the server
    stops. Every file Gradio received is deleted from its temporary folder as soon as it has been handled."""

    def __init__(self, bot: Chatbot, update: DocumentUpdate, uploads: Uploads | None, off: str = "") -> None:
        self.bot, self.update, self.uploads, self.off = bot, update, uploads, off

    def render(self, app: gr.Blocks) -> None:
        """Make the panel's components and events (inside `app`'s Blocks context)."""
        config = self.bot.config
        with gr.Accordion("Documents", open=False) as accordion:
            self.listing = gr.HTML(js_on_load=None, elem_id="qa-documents")
            if self.uploads is None:
                gr.HTML(status_html([self.off]), js_on_load=None, elem_id="qa-uploads-off")
            else:
                extensions = self.uploads.extensions
                self.upload = gr.File(
                    label=f"Add documents ({', '.join(extensions)}; up to {config.ui.max_upload_mb:g} MB each; "
                    "kept in the uploads folder)",
                    file_count="multiple",
                    file_types=list(extensions),
                    elem_id="qa-upload",
                )
                with gr.Row():
                    self.chosen = gr.Dropdown(
                        label="Uploaded document to remove", choices=[], scale=3, elem_id="qa-remove-choice"
                    )
                    remove = gr.Button("Remove…", variant="stop", scale=1, min_width=80, elem_id="qa-remove")
                with gr.Group(visible=False, elem_id="qa-confirm") as self.confirm_box:
                    self.question = gr.HTML(js_on_load=None, elem_id="qa-confirm-text")
                    self.pending = gr.Textbox(visible=False)  # the upload the question is about
                    with gr.Row():
                        confirm = gr.Button("Yes, remove it", variant="stop", elem_id="qa-confirm-remove")
                        cancel = gr.Button("Cancel", elem_id="qa-cancel-remove")
                with gr.Row(visible=False, elem_id="qa-restore-row") as self.restore_row:
                    self.removed = gr.Dropdown(
                        label="Removed uploads (they can be restored until the server stops)",
                        choices=[],
                        scale=3,
                        elem_id="qa-restore-choice",
                    )
                    restore = gr.Button("Restore", scale=1, min_width=80, elem_id="qa-restore")
            self.status = gr.HTML(js_on_load=None, elem_id="qa-status")

        shown = [self.listing, self.status]
        if self.uploads is not None:
            shown += [self.chosen, self.confirm_box, self.pending, self.restore_row, self.removed]
        private = {"api_visibility": "private"}
        changing = {**private, "concurrency_limit": 1, "concurrency_id": "documents"}
        app.load(self.show, None, shown, **private)
        accordion.expand(self.refresh, None, shown, **private)
        if self.uploads is None:
            return  # no handler that could change a document exists at all
        # preprocess=False: the handler gets Gradio's own record of each file (its path in Gradio's temporary
        # folder, which Gradio has checked, and its original name) even for a file of the wrong type, which
        # Gradio would otherwise refuse itself and leave in its temporary folder for a day.
        self.upload.upload(self.add, self.upload, [*shown, self.upload], preprocess=False, **changing)
        asking = [self.confirm_box, self.question, self.pending, self.status]
        remove.click(self.ask_to_remove, self.chosen, asking, **private)  # queued: it may wait for the index
        cancel.click(self.cancel, None, [self.confirm_box, self.pending, self.status], queue=False, **private)
        confirm.click(self.remove, self.pending, shown, **changing)
        restore.click(self.restore, self.removed, shown, **changing)

    def show(self, message: str = "") -> dict:
        """The list (during an update, as it was, rather than wait for the new one), the choices to remove
        and to restore, and `message` (or a note that the index is being updated)."""
        asker, note = self.update.answerer()
        try:
            documents = asker.data.documents
        except ChatbotError as exc:
            documents, message = [], message or status_html([str(exc)], error=True)
        config = self.bot.config
        out = {
            self.listing: documents_html(documents, config.paths.docs, config.paths.uploads_folder),
            self.status: message or (status_html([INDEXING]) if note else ""),
        }
        if self.uploads is not None:
            uploaded = [doc["path"] for doc in documents if doc["path"].startswith(UPLOADS)]
            removed = list(self.uploads.removed)
            out[self.chosen] = gr.Dropdown(choices=_named(uploaded), value=None)
            out[self.confirm_box] = gr.update(visible=False)
            out[self.pending] = ""
            out[self.restore_row] = gr.update(visible=bool(removed))
            out[self.removed] = gr.Dropdown(choices=_named(removed), value=None)
        return out

    def refresh(self) -> dict:
        """The list as it is now, each time the panel is opened: another visitor may have changed it."""
        out = self.show()
        del out[self.status]
        return out

    def add(self, files: list[dict[str, Any]] | None):
        """Save the uploads and index them; says at once that indexing has started, and then how it went,
        file by file, each line coloured by its own outcome."""
        shown, saved = [], []  # status lines as HTML; (name given, cited path) of the files saved
        asker, _ = self.update.answerer()
        try:
            indexed = {doc["sha256"]: doc["path"] for doc in asker.data.documents}
        except ChatbotError:
            indexed = {}
        with self.update.running():
            for item in files or []:
                path, name = _received(item)
                try:
                    saved.append((clean_name(name), self.uploads.add(path, name, indexed)))
                except ChatbotError as exc:
                    shown.append(status_html([str(exc)], error=True))
                finally:
                    _discard_received(path)
            if not saved:
                yield {**self.show("".join(shown)), self.upload: None}
                return
            adding = f"Adding {', '.join(cited for _, cited in saved)}. {INDEXING}"
            yield {self.status: "".join([*shown, status_html([adding])])}
            indexing = IndexingRun(self.bot)
            for done, total in indexing.progress():
                line = f"{adding} Embedded {done:,} of {total:,} sentences ({100 * done // total}%)"
                pace = indexing.pace()
                if pace is not None:
                    line += f", {pace[0]:,.0f} a second, about {duration_text(pace[1])} left"
                line += "."
                yield {self.status: "".join([*shown, status_html([line])])}
            if indexing.error is not None:
                for _, cited in saved:
                    self.uploads.discard(cited)
                failed = status_html([f"indexing failed, so nothing was added: {indexing.error}"], error=True)
                yield {**self.show("".join([*shown, failed])), self.upload: None}
                return
        documents = {doc["path"] for doc in self.bot.data.documents}
        for name, cited in saved:
            if cited in documents:
                shown.append(status_html([_added(name, cited, documents)]))
            else:
                self.uploads.discard(cited)  # unreadable (binary or empty): not kept
                shown.append(status_html([f"{name}: no text could be read from it, so it was not added"], error=True))
        yield {**self.show("".join(shown)), self.upload: None}

    def ask_to_remove(self, cited: str | None) -> dict:
        """The first step of removing: what would happen, and a button to confirm it (or cancel)."""
        try:
            self._check_removable(cited)
        except ChatbotError as exc:
            return {self.confirm_box: gr.update(visible=False), self.status: status_html([str(exc)], error=True)}
        question = (
            f"Remove {cited}? It is taken out of the uploads folder and the index; it can be restored here until "
            "the server stops."
        )
        return {
            self.confirm_box: gr.update(visible=True),
            self.question: status_html([question]),
            self.pending: cited,
            self.status: "",
        }

    def cancel(self) -> dict:
        nothing = status_html(["Nothing was removed."])
        return {self.confirm_box: gr.update(visible=False), self.pending: "", self.status: nothing}

    def remove(self, cited: str | None) -> dict:
        try:
            self._check_removable(cited)
            with self.update.running():
                self.uploads.remove(cited)
                self.bot.index()
        except ChatbotError as exc:
            return self.show(status_html([str(exc)], error=True))
        return self.show(status_html([f"{cited} was removed; it can be restored below until the server stops."]))

    def restore(self, cited: str | None) -> dict:
        if not cited or cited not in self.uploads.removed:
            return self.show(status_html(["Choose a removed upload to restore."], error=True))
        try:
            with self.update.running():
                now = self.uploads.restore(cited)
                self.bot.index()
        except ChatbotError as exc:
            return self.show(status_html([f"{cited} could not be restored: {exc}"], error=True))
        where = "" if now == cited else f" as {now} (an upload of its name was added meanwhile)"
        return self.show(status_html([f"{cited} was restored{where}."]))

    def _check_removable(self, cited: str | None) -> None:
        if not cited:
            raise ChatbotError("Choose an uploaded document to remove.")
        self.uploads.path_of(cited)  # an upload, in the uploads folder: nothing else can be removed
        if len(self.bot.data.documents) == 1:
            raise ChatbotError("The last document cannot be removed.")


def _named(cited: list[str]) -> list[tuple[str, str]]:
    """Dropdown choices for uploads: shown by their names in the uploads folder, valued by their cited paths."""
    return [(path.removeprefix(UPLOADS), path) for path in cited]


def _added(name: str, cited: str, documents: set[str]) -> str:
    kept = []
    if cited != UPLOADS + name:
        kept.append(f"the upload {UPLOADS}{name} that was already there is kept as it was")
    if name in documents:
        kept.append(f"the document {name} of the documents folder is kept as it was")
    why = "; ".join([f"added as {cited}", *kept])
    return f"{name} is indexed ({why}); you can ask about it now."


def _received(item: dict[str, Any] | str) -> tuple[Path, str]:
    """The path in Gradio's temporary folder of a file received, and the name it was uploaded under."""
    if isinstance(item, dict):
        path = Path(item.get("path") or "")
        return path, item.get("orig_name") or path.name
    return Path(item), Path(item).name


def _discard_received(path: Path) -> None:
    """Delete a file Gradio received (kept in a folder of its own under Gradio's temporary folder), and that
    folder when it is left empty: a refused upload is not left there for a day, nor is an accepted one, which
    the uploads folder now holds. Nothing outside Gradio's temporary folder is touched."""
    from gradio.utils import get_upload_folder

    try:
        folder = Path(get_upload_folder()).resolve()
        if not path.resolve().is_relative_to(folder):
            return
        path.unlink(missing_ok=True)
        if path.parent.resolve() != folder:
            with contextlib.suppress(OSError):
                path.parent.rmdir()
    except OSError:
        pass

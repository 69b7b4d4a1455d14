"""The web chat's page (Gradio): its layout, its look, and the events that connect the question box, the
conversation, the sources panel, the documents panel and the API.

Every piece of document text (quotes, passages, file names) is escaped before it reaches the page, so a
document holding HTML, script or Markdown shows as text. Settings from the page apply to one request at a
time (`Chatbot.ask(..., answer=...)`); the chatbot itself is shared by all visitors and never changed by one.

Usage example:
    app = build_app(bot)                   # server.py starts it: server.serve(bot, host, port)

    # from another program, with gradio_client:
    Client("http://127.0.0.1:7860/").predict("Which chip did Guangdong highlight?", api_name="/ask")
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ...answering.bot import Chatbot
from ...config import Config
from ...index.uploads import Uploads
from .api import ask_endpoint
from .conversation import ChatHandlers
from .documents import DocumentsPanel, DocumentUpdate
from .render import sources_html

MAX_QUOTES_CHOICE = 6  # the largest "number of quotes" the settings slider offers
ASK_CONCURRENCY = 8  # questions answered at the same time; more wait in Gradio's queue

# The page's fonts are the system's own (Gradio's default bundles a subset of Source Sans Pro that lacks most
# glyphs, so a bold capital "A" was drawn in a fallback font): complete, and nothing to download.
SYSTEM_FONTS = ("system-ui", "-apple-system", "Segoe UI", "Roboto", "Noto Sans", "Liberation Sans", "Arial", "sans-serif")
SYSTEM_MONO_FONTS = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace")
THEME = gr.themes.Default(font=SYSTEM_FONTS, font_mono=SYSTEM_MONO_FONTS)

CSS = """
#qa-sources { max-height: 75vh; overflow-y: auto !important; }
#qa-chat .message { overflow-wrap: anywhere; }
.qa-answer p, .qa-abstain p { margin: 0 0 .4em 0; }
.qa-quote { font-style: italic; }
.qa-cite { font-weight: 600; text-decoration: none; white-space: nowrap; }
.qa-abstain { border-left: 4px solid #9ca3af; padding-left: .6em; color: #4b5563; }
.dark .qa-abstain { color: #d1d5db; }
.qa-meta { font-size: .85em; }
.qa-pending { font-style: italic; color: #4b5563; margin: 0; }
.dark .qa-pending { color: #d1d5db; }
.qa-note { border-left: 4px solid #b45309; padding-left: .6em; margin: .4em 0 0 0; font-size: .9em; }
.dark .qa-note { border-left-color: #fbbf24; }
.qa-conf { border-bottom: 1px dotted currentColor; cursor: help; }
/* at least 4.5:1 against the chat's message backgrounds, light and dark */
.qa-conf-high { color: #166534; } .qa-conf-medium { color: #92400e; } .qa-conf-low { color: #991b1b; }
.dark .qa-conf-high { color: #4ade80; } .dark .qa-conf-medium { color: #fbbf24; } .dark .qa-conf-low { color: #fca5a5; }
.qa-turn { margin-bottom: 1em; }
.qa-turn h3, .qa-turn summary { font-size: 1em; font-weight: 600; margin: .2em 0 .5em 0; overflow-wrap: anywhere; }
.qa-source { border: 1px solid #d1d5db; border-radius: 6px; padding: .5em .7em; margin: 0 0 .6em 0; scroll-margin: 1em; }
.qa-nearest .qa-source { border-style: dashed; }
.qa-source header { font-size: .9em; font-weight: 600; margin-bottom: .3em; overflow-wrap: anywhere; }
.qa-passage { white-space: pre-wrap; overflow-wrap: anywhere; font-size: .92em; line-height: 1.45; }
.qa-passage mark { background: #fde68a; color: #1f2937; padding: 0 .1em; }
.qa-flash { outline: 3px solid #f59e0b; }
.qa-docs { width: 100%; border-collapse: collapse; font-size: .92em; }
.qa-docs td, .qa-docs th { text-align: left; padding: .2em .5em; border-bottom: 1px solid #e5e7eb; overflow-wrap: anywhere; }
.qa-docs td.qa-num { text-align: right; white-space: nowrap; }
.qa-status-error { color: #b91c1c; }
.dark .qa-status-error { color: #fca5a5; }
#qa-hint p { margin: 0; font-size: .9em; }
"""

# Clicking a citation [n] (mouse, or Enter on it) opens and scrolls to its source in the sources panel.
HEAD = """<script>
document.addEventListener("click", function (event) {
  var link = event.target.closest && event.target.closest("a.qa-cite");
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  var target = document.getElementById((link.getAttribute("href") || "").slice(1));
  if (!target) return;
  var details = target.closest("details");
  if (details) details.open = true;
  target.scrollIntoView({behavior: "smooth", block: "center"});
  target.focus({preventScroll: true});
  target.classList.add("qa-flash");
  setTimeout(function () { target.classList.remove("qa-flash"); }, 2000);
}, true);

// The question box is emptied by a step that Gradio runs a moment after Enter; on a busy page the next
// question's first keys can land before it. Note the question as it was when Enter went down, so that
// TAKE_QUESTION moves exactly that out of the box and leaves whatever was typed after it.
document.addEventListener("keydown", function (event) {
  if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
  if (event.target.closest && event.target.closest("#qa-question")) window.qaAsked = event.target.value;
}, true);

// Gradio labels each chat message for screen readers with its raw content, which here is escaped HTML
// ("based&#63;", '<div class="qa-answer">'); label it with the text shown instead.
function qaRelabel() {
  document.querySelectorAll('#qa-chat [aria-label*="message: "]').forEach(function (message) {
    var label = message.getAttribute("aria-label");
    var shown = label.slice(0, label.indexOf(": ") + 2) + message.innerText.replace(/\\s+/g, " ").trim();
    if (label !== shown) message.setAttribute("aria-label", shown);
  });
}
new MutationObserver(function (changes) {
  var inChat = changes.some(function (change) {
    var node = change.target.nodeType === 1 ? change.target : change.target.parentElement;
    return node && node.closest("#qa-chat");
  });
  if (inChat) qaRelabel();
}).observe(document, {subtree: true, childList: true, attributes: true, attributeFilter: ["aria-label"]});
</script>"""

# The browser-side first step of asking: [the question, what stays in the box].
# Also numbers the questions in the order asked: two asked in quick succession may reach the server in the
# other order, and the conversation puts them back in this one.
TAKE_QUESTION = """(text) => {
  var asked = typeof window.qaAsked === "string" && text.startsWith(window.qaAsked) ? window.qaAsked : text;
  window.qaAsked = null;
  window.qaOrder = (window.qaOrder || 0) + 1;
  return [asked, text.slice(asked.length), window.qaOrder];
}"""


def build_app(bot: Chatbot, examples: list[str] | None = None, uploads_off: str = "") -> gr.Blocks:
    """The page and its API for `bot`. Cheap: nothing is loaded until the first request (see `start`, which
    passes the example questions the documents answer). With `uploads_off`, the reason shown in their place,
    the page has no way to upload or remove documents: no such handler exists, so no request can reach one.
    """
    config = bot.config
    update = DocumentUpdate(bot)
    handlers = ChatHandlers(bot, update)
    panel = DocumentsPanel(bot, update, None if uploads_off else Uploads.of(config), uploads_off)
    examples = [{"text": question} for question in (config.ui.examples if examples is None else examples)]
    with gr.Blocks(title="Document Q&A", analytics_enabled=False, delete_cache=(3600, 86400)) as app:
        gr.Markdown(
            "## Ask the documents\nEvery answer is quoted word for word from the documents, with its source. "
            "When they do not answer, it says so."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=340):
                page = _chat_column(config, examples)
            with gr.Column(scale=2, min_width=300):
                page.sources = gr.HTML(sources_html([]), js_on_load=None, elem_id="qa-sources")
        panel.render(app)
        _connect(page, handlers)
        gr.api(ask_endpoint(bot), api_name="ask", concurrency_limit=ASK_CONCURRENCY, concurrency_id="ask")

    return app


@dataclass
class _Page:
    """The chat's components, as the events connect them."""

    chat: gr.Chatbot
    question: gr.Textbox
    send: gr.Button
    hint: gr.HTML
    taken: gr.Textbox  # the question just taken out of the box, on its way
    order: gr.Number  # and its number in the order asked
    download_md: gr.DownloadButton
    download_jsonl: gr.DownloadButton
    max_quotes: gr.Slider
    min_confidence: gr.Slider
    sources: gr.HTML | None = None


def _chat_column(config: Config, examples: list[dict[str, str]]) -> _Page:
    """The conversation, the question box, the downloads and the settings (inside the page's Blocks)."""
    chat = gr.Chatbot(
        label="Conversation",
        height="60vh",
        examples=examples or None,
        render_markdown=False,
        sanitize_html=True,
        allow_tags=False,
        latex_delimiters=[],
        feedback_options=None,
        buttons=[],
        elem_id="qa-chat",
    )
    with gr.Row():
        question = gr.Textbox(
            label="Question",
            placeholder="Ask about the documents and press Enter",
            lines=1,
            max_lines=4,
            scale=5,
            autofocus=True,
            max_length=config.answer.max_question_chars,  # the browser takes no more
            elem_id="qa-question",
        )
        send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="qa-send")
    hint = gr.HTML(elem_id="qa-hint")
    taken = gr.Textbox(visible=False)  # the question just taken out of the box, on its way
    order = gr.Number(visible=False, precision=0)  # and its number in the order asked
    with gr.Row():
        download_md = gr.DownloadButton("Download Markdown", size="sm", interactive=False)
        download_jsonl = gr.DownloadButton("Download JSON lines", size="sm", interactive=False)
    with gr.Accordion("Settings", open=False):
        max_quotes = gr.Slider(
            1,
            MAX_QUOTES_CHOICE,
            value=min(config.answer.max_quotes, MAX_QUOTES_CHOICE),
            step=1,
            precision=0,
            label="Number of quotes (at most)",
        )
        min_confidence = gr.Slider(
            0.0,
            1.0,
            value=config.answer.min_confidence,
            step=0.05,
            label="Abstention threshold (answers below this confidence are withheld)",
        )
    return _Page(chat, question, send, hint, taken, order, download_md, download_jsonl, max_quotes, min_confidence)


def _connect(page: _Page, handlers: ChatHandlers) -> None:
    """The chat's events. Enter (or Ask) first moves the question out of the box in the browser itself, then
    hands it to `accept`, then to `answer_waiting`; each step may run again while an earlier question is pending."""
    settings = [page.max_quotes, page.min_confidence]
    answer_outputs = [page.chat, page.sources, page.download_md, page.download_jsonl, page.hint]
    quick = {"api_visibility": "private", "queue": False, "trigger_mode": "multiple"}
    slow = {**quick, "queue": True, "concurrency_limit": ASK_CONCURRENCY, "concurrency_id": "ask"}
    slow["show_progress"] = "hidden"  # the chat says "Finding the answer…" itself
    for trigger in (page.question.submit, page.send.click):
        trigger(None, page.question, [page.taken, page.question, page.order], js=TAKE_QUESTION, **quick).then(
            handlers.accept, [page.taken, page.order, *settings], [page.chat, page.hint], **quick
        ).then(handlers.answer_waiting, None, answer_outputs, **slow)
    page.chat.example_select(handlers.accept_example, settings, [page.chat, page.hint], **quick).then(
        handlers.answer_waiting, None, answer_outputs, **slow
    )
    # Whole quotes only: 2.5 typed in the slider's box becomes 3 there, as on the slider, not a silent 2.
    page.max_quotes.change(None, page.max_quotes, page.max_quotes, js="(n) => Math.round(n)", **quick)
    cleared = [page.sources, page.download_md, page.download_jsonl, page.hint]
    page.chat.clear(handlers.forget, None, cleared, **quick)

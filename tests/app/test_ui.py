"""The web chat: escaping and highlighting, the Gradio API through gradio_client on a live loopback server, 8
clients at once while the index is rebuilt, uploads kept apart from the documents (off when shared without a
password, even over plain HTTP), example questions that fit the documents, and the page itself in a real
headless Chromium."""

from __future__ import annotations

import dataclasses
import html
import json
import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatbot import Answer, ChatbotError, Quote, Source
from chatbot.answering.answer import ABSTENTION
from chatbot.app.web.conversation import Conversation, Conversations, chat_messages
from chatbot.app.web.documents import IndexingRun, documents_html, duration_text
from chatbot.app.web.render import (
    answer_html,
    conversation_jsonl,
    conversation_markdown,
    escape,
    passage_html,
    sources_html,
)
from chatbot.app.web.server import answered_examples, offered_examples, start, uploads_refusal
from chatbot.index.uploads import Uploads

from ..browser import CHROMIUM_ARGS, chromium_executable, free_port
from ..conftest import SEED_FILE, SEEDS, document_text

HOSTILE = (
    "Hostile note. The trapdoor payload is <script>window.__pwned = 1; alert('script')</script> here. "
    "The trapdoor image is <img src=x onerror=\"window.__pwned = 2; alert('img')\"> in the text. "
    "The trapdoor link is [click me](javascript:alert('md')) and ![pic](x) and ${alert('template')} and `code`.\n"
)
QUESTIONS = {  # eight seed questions, each with words only its own answer quotes
    "Which chip did Guangdong highlight?": "Ascend 910C",
    "What alternative to Android is mentioned?": "HarmonyOS",
    "Which fields is the province investing in?": "quantum computing",
    "Where is DeepSeek based?": "Zhejiang",
    "Which city is the tech manufacturing powerhouse in Guangdong?": "Shenzhen",
    "For how many consecutive years has Guangdong been the top innovation hub?": "nine consecutive years",
    "What is driving a surge in venture capital funding?": "venture capital",
    "What role will open-source initiatives play?": "Open-source initiatives",
}
pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # pandas notices inside gradio

ANSWER_TIMEOUT = 180_000  # ms; a slow 2-core machine under load
INDEX_TIMEOUT = 600_000


# ----- what the page shows, without a server ---------------------------------------------------------------


@given(st.text(alphabet=st.characters(exclude_categories=["Cc", "Cs"]) | st.just("\n")))
def test_escape_shows_exactly_the_text_and_no_markup(text):
    escaped = escape(text)
    assert html.unescape(escaped.replace("<br>", "\n")) == text
    bare = re.sub(r"&#\d+;", "", escaped.replace("<br>", ""))
    assert not any(ord(character) < 128 and not character.isalnum() and character != " " for character in bare)


def test_hostile_text_becomes_inert():
    escaped = escape(HOSTILE)
    assert "<script" not in escaped and "<img" not in escaped and "](" not in escaped and "${" not in escaped
    assert "&#60;script&#62;" in escaped


def _answer(passage: str, passage_start: int, spans: list[tuple[int, int]]) -> Answer:
    quotes = tuple(
        Quote(1, passage[lo - passage_start : hi - passage_start], "a.txt", lo, hi, 1, "0" * 64) for lo, hi in spans
    )
    source = Source(1, "a.txt", passage_start, passage_start + len(passage), 1, passage)
    return Answer("q?", False, 0.9, " ".join(f"“{q.text}” [1]" for q in quotes), quotes, (source,))


def test_highlight_follows_the_offsets_not_the_first_match():
    answer = _answer("Yes. Yes. No.", 100, [(105, 109)])  # the second "Yes."
    assert passage_html(answer.sources[0], answer) == "Yes&#46; <mark>Yes&#46;</mark> No&#46;"


def test_highlight_marks_every_quote_of_the_citation_and_escapes_them():
    answer = _answer("A <b>. B & c. D.", 10, [(10, 16), (17, 23)])
    assert passage_html(answer.sources[0], answer) == (
        "<mark>A &#60;b&#62;&#46;</mark> <mark>B &#38; c&#46;</mark> D&#46;"
    )


CHIP = "Central to Guangdong’s narrative is Huawei’s Ascend 910C chip."


def _chip_answer() -> Answer:
    passage = "Huawei’s Ascend 910C: A Key Weapon\n" + CHIP + " It cited the chip."
    answer = _answer(passage, 1560, [(1560 + passage.index(CHIP), 1560 + passage.index(CHIP) + len(CHIP))])
    return dataclasses.replace(answer, question="Which chip did Guangdong highlight?", confidence=0.87)


def test_answer_message_quotes_with_citation_links_and_confidence():
    message = answer_html(_chip_answer(), 3)
    assert message.startswith('<div class="qa-answer">')
    assert f'“{escape(CHIP)}”</span> <a class="qa-cite" href="#qa-src-3-1"' in message
    assert '<span class="qa-conf qa-conf-high" title="confidence 0.87 of 1">high confidence</span>' in message
    assert "\n" not in message  # one HTML block: nothing for Markdown to reinterpret


def test_the_answer_phrase_is_bold_inside_the_quote_and_escaped():
    answer = _chip_answer()
    quote = answer.quotes[0]
    phrase_start = quote.start + CHIP.index("Ascend 910C")
    marked = dataclasses.replace(quote, text=quote.text.replace("Huawei’s", "Huawei’s <b>"), end=quote.end + 4,
                                 answer_span=(phrase_start + 4, phrase_start + 4 + len("Ascend 910C")))
    message = answer_html(dataclasses.replace(answer, quotes=(marked,)), 1)
    before, after = "Central to Guangdong’s narrative is Huawei’s <b> ", " chip."
    assert f'“{escape(before)}<strong class="qa-phrase">Ascend 910C</strong>{escape(after)}”' in message
    assert "<b>" not in message  # the document's own text stays text


def test_sources_panel_highlights_each_quote_in_its_passage():
    answer = _chip_answer()
    panel = sources_html([answer])
    assert '<article class="qa-source" id="qa-src-1-1"' in panel
    assert "[1] a&#46;txt, line 1" in panel
    assert f"<br><mark>{escape(CHIP)}</mark> It cited" in panel


def test_abstention_is_marked_as_not_an_answer():
    nearest = Source(1, "a.txt", 0, 20, 4, "Quince trees, mostly.")
    answer = Answer("What is the boiling point of mercury on Mars?", True, 0.12, ABSTENTION, (), (nearest,))
    message = answer_html(answer, 1)
    assert message.startswith('<div class="qa-abstain">') and "qa-quote" not in message
    assert 'Nearest text (not an answer): <a class="qa-cite" href="#qa-src-1-1"' in message
    assert "low confidence" in message
    panel = sources_html([answer])
    assert "Nearest text — not an answer" in panel and "qa-nearest" in panel and "<mark>" not in panel


def test_earlier_answers_fold_away_below_the_latest():
    first = dataclasses.replace(_chip_answer(), question="First?")
    panel = sources_html([first, _chip_answer()])
    assert panel.index('id="qa-turn-2"') < panel.index('id="qa-turn-1"')
    assert (
        '<details class="qa-turn qa-cited" id="qa-turn-1"><summary title="First&#63;">Sources for “First&#63;”' in panel
    )


def test_a_long_question_heads_its_sources_shortened_and_in_full_on_hover():
    question = "Why " + "very " * 60 + "long?\n<b>"
    panel = sources_html([dataclasses.replace(_chip_answer(), question=question), _chip_answer()])
    headings = re.findall(r'<(?:h3|summary) title="([^"]*)">Sources for “([^”]*)”', panel)
    assert len(headings) == 2
    full, short = headings[1]
    assert html.unescape(full) == " ".join(question.split())
    assert short.endswith("very…") and len(html.unescape(short)) <= 120


def test_document_names_are_escaped():
    table = documents_html([{"path": "<img src=x onerror=alert(1)>.md", "size": 2048, "sentences": 3}])
    assert "<img" not in table and "2.0 KB" in table


def test_exports_hold_every_answer():
    nearest = Source(1, "a.txt", 0, 20, 4, "Quince trees, mostly.")
    answers = [_chip_answer(), Answer("Mars?", True, 0.1, ABSTENTION, (), (nearest,))]
    lines = conversation_jsonl(answers).splitlines()
    assert [json.loads(line) for line in lines] == [
        {**answer.to_dict(), "id": f"q{n}"} for n, answer in enumerate(answers, start=1)
    ]
    markdown = conversation_markdown(answers)
    assert f"## Which chip did Guangdong highlight?\n\n“{CHIP}” [1]\n\n- [1] a.txt, line 1, characters" in markdown
    assert "Nearest text (not an answer):\n\n- [1] a.txt, line 4, characters 0-20" in markdown


def test_markdown_export_quotes_the_question_and_the_documents_as_text():
    markdown_it = pytest.importorskip("markdown_it")  # comes with gradio (through rich)

    question = "Two lines?\n# heading\n- [x](javascript:alert(1)) <script>alert(2)</script> *a* `b` &amp; ![i](y)"
    answer = dataclasses.replace(_chip_answer(), question=question)
    quote = dataclasses.replace(answer.quotes[0], text="# not a heading\n<b>bold</b> [l](http://x)", source="<i>.md")
    markdown = conversation_markdown([dataclasses.replace(answer, quotes=(quote,))])
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").enable("strikethrough").render(markdown)
    assert re.findall(r"<(\w+)", rendered) == ["h1", "h2", "p", "ul", "li", "p"]  # only the export's own
    shown = html.unescape(re.sub(r"<[^>]+>", "", rendered))
    assert " ".join(question.split()) in shown
    assert "“# not a heading <b>bold</b> [l](http://x)” [1]" in shown and "[1] <i>.md, line" in shown


def test_settings_apply_to_one_request_only(seed_bot):
    before = seed_bot.config
    question = "Which chip did Guangdong highlight?"
    assert len(seed_bot.ask(question, answer={"max_quotes": 1, "min_confidence": 0.0}).quotes) == 1
    assert seed_bot.ask(question, answer={"min_confidence": 1.0}).abstained
    assert seed_bot.config is before
    assert seed_bot.ask(question) == seed_bot.ask_batch([question])[0]
    with pytest.raises(ChatbotError):
        seed_bot.ask(question, answer={"max_quotes": 0})


def test_a_question_asked_while_another_is_answered_waits_its_turn():
    conversation = Conversation()
    assert not conversation.add("First?", {})
    assert conversation.claim() and not conversation.claim()  # one request answers a visitor's questions
    first = conversation.next_waiting()
    assert conversation.add("Second?", {})  # queued behind the first
    assert [m["content"] for m in chat_messages(conversation)][1::2] == [
        '<p class="qa-pending">Finding the answer…</p>',
        '<p class="qa-pending">Waiting for its turn…</p>',
    ]
    first.answer = _chip_answer()
    assert conversation.next_waiting().question == "Second?"  # taken by the request already answering
    assert conversation.next_waiting() is None and conversation.claim()  # and the claim given up with the last


def test_questions_that_reach_the_server_out_of_order_are_put_back_in_the_order_asked():
    conversation = Conversation()
    conversation.add("Second?", {}, order=2)  # its request overtook the first one's
    conversation.add("First?", {}, order=1)
    conversation.add("An example question?", {})  # examples carry no number: last
    assert [turn.question for turn in conversation.turns] == ["First?", "Second?", "An example question?"]
    assert conversation.claim() and conversation.next_waiting().question == "First?"
    conversation.add("Zeroth?", {}, order=0)  # too late to go before one already being answered
    assert [turn.question for turn in conversation.turns][:2] == ["First?", "Zeroth?"]


# ----- a live server, driven by gradio_client --------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The web chat on a free loopback port, over its own copy of the seeds (tests here add and remove
    documents). Yields (bot, url, documents folder)."""
    from chatbot import Chatbot

    docs = tmp_path_factory.mktemp("ui-docs")
    shutil.copytree(SEEDS, docs, dirs_exist_ok=True)
    # The copy is the folder the seed examples were written for: the page offers them (see offered_examples).
    bot = Chatbot.from_config(docs=docs, index=tmp_path_factory.mktemp("ui-index"), ui={"examples_for": str(docs)})
    app, url = start(bot, host="127.0.0.1", port=free_port())
    yield bot, url, docs
    app.close()


def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False)


def test_api_answers_with_the_answer_json(server):
    _, url, docs = server
    answer = _client(url).predict("Which chip did Guangdong highlight?", api_name="/ask")
    assert set(answer) == {"id", "question", "abstained", "confidence", "answer", "quotes", "sources", "confidence_label"}
    assert not answer["abstained"] and answer["quotes"]
    assert "Ascend 910C" in answer["answer"]
    for quote in answer["quotes"]:
        assert document_text(docs, quote["source"])[quote["start"] : quote["end"]] == quote["text"]
    for source in answer["sources"]:
        assert document_text(docs, source["source"])[source["start"] : source["end"]] == source["text"]


def test_api_settings_apply_to_that_request_only(server):
    bot, url, _ = server
    client = _client(url)
    question = "Which chip did Guangdong highlight?"
    assert len(client.predict(question, max_quotes=1, min_confidence=0.0, api_name="/ask")["quotes"]) == 1
    withheld = client.predict(question, min_confidence=1.0, api_name="/ask")
    assert withheld["abstained"] and not withheld["quotes"] and withheld["sources"]
    assert client.predict(question, api_name="/ask") == bot.ask(question).to_dict()  # nothing left changed


def test_api_reports_an_empty_question(server):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="the question is empty"):
        _client(server[1]).predict("   ", api_name="/ask")


def _call(url: str, path: str, body: dict) -> tuple[str, object]:
    """A call to the HTTP API without gradio_client: POST, then read the result's server-sent events;
    returns the last event's name ("complete" or "error") and data."""
    import urllib.request

    def fetch(request) -> str:
        with urllib.request.urlopen(request, timeout=ANSWER_TIMEOUT / 1000) as response:
            return response.read().decode("utf-8")

    post = urllib.request.Request(
        f"{url}gradio_api/call/{path}", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    event_id = json.loads(fetch(post))["event_id"]
    stream = fetch(f"{url}gradio_api/call/{path}/{event_id}")
    events = re.findall(r"^event: (\w+)\ndata: (.*)$", stream, re.MULTILINE)
    name, data = events[-1]
    return name, json.loads(data)


def test_http_api_takes_the_settings_as_optional(server):
    question = "Where is DeepSeek based?"
    event, data = _call(server[1], "v2/ask", {"question": question})
    assert event == "complete" and data[0]["question"] == question and "Zhejiang" in data[0]["answer"]
    event, data = _call(server[1], "ask", {"data": [question, None, None]})  # positional: all three, null for default
    assert event == "complete" and "Zhejiang" in data[0]["answer"]


@pytest.mark.parametrize(
    "path, body, message",
    [
        ("v2/ask", {}, "the question is empty"),
        ("ask", {"data": ["  ", None, None]}, "the question is empty"),
        ("ask", {"data": [42, None, None]}, "the question must be text"),
        ("ask", {"data": [["Where?"], None, None]}, "the question must be text"),
        ("v2/ask", {"question": {"text": "Where?"}}, "the question must be text"),
        ("v2/ask", {"question": "Where?", "max_quotes": 2.5}, "max_quotes must be int"),
        ("v2/ask", {"question": "Where?", "min_confidence": 7}, "min_confidence must be between 0 and 1"),
        ("v2/ask", {"question": "?"}, "the question is empty: it has no words"),
        ("v2/ask", {"question": "\u200b\x1b[2J\x07"}, "the question is empty: it has no words"),
        ("v2/ask", {"question": "x" * 1_000_000}, "the question is 1,000,000 characters long; at most 2,000"),
    ],
)
def test_http_api_reports_a_user_mistake_cleanly(server, capfd, path, body, message):
    event, data = _call(server[1], path, body)
    assert event == "error" and message in json.dumps(data)
    assert len(json.dumps(data)) < 1000  # the reason, not the question echoed back
    assert "Traceback" not in capfd.readouterr().err  # a mistake of the caller's, not a crash of the server's


def test_the_page_uses_the_system_fonts_not_a_partial_bundled_one(server):
    """Gradio's default theme bundles a subset of Source Sans Pro that lacks most glyphs (a bold capital "A" was
    drawn in a fallback font): the page names the system's fonts instead, which are complete."""
    status, css = _get(server[1] + "theme.css")
    assert status == 200
    css = css.decode("utf-8")
    assert "Source Sans Pro" not in css and "IBM Plex Mono" not in css
    assert re.search(r"--font:\s*(['\"]?)system-ui\1", css), css[:500]


def test_eight_clients_get_their_own_answers_while_the_index_is_rebuilt(server, tmp_path):
    """8 clients ask different questions at once, five rounds each; after the first round a new document
    is added and the index rebuilt under them. Every answer must be the asker's own and correct."""
    bot, url, docs = server
    clients = [_client(url) for _ in QUESTIONS]
    first_round = threading.Barrier(len(QUESTIONS) + 1, timeout=600)

    def ask(client, question: str) -> list[dict]:
        answers = []
        try:
            for round_ in range(5):
                # min_confidence=0 so that this checks who gets which answer, not where abstention starts
                answers.append(client.predict(question, 3, 0.0, api_name="/ask"))
                if round_ == 0:
                    first_round.wait()
        except BaseException:
            first_round.abort()  # so that the test fails with this error instead of waiting
            raise
        return answers

    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        futures = {question: pool.submit(ask, client, question) for client, question in zip(clients, QUESTIONS)}
        first_round.wait()
        (tmp_path / "orchard.txt").write_text("The Pellworth orchard grows 300 quince trees.\n", encoding="utf-8")
        Uploads.of(bot.config).add(tmp_path / "orchard.txt")  # as the page saves an upload
        bot.index()
        results = {question: future.result(timeout=900) for question, future in futures.items()}
    for question, expected in QUESTIONS.items():
        assert len(results[question]) == 5
        for answer in results[question]:
            assert answer["question"] == question
            assert expected in answer["answer"], (question, answer["answer"])
    pellworth = _client(url).predict("How many quince trees does the Pellworth orchard grow?", 1, 0.0, api_name="/ask")
    assert pellworth["quotes"][0]["source"] == ".uploads/orchard.txt"


# ----- shared on the network: uploads off unless allowed ---------------------------------------------------

LIGHTHOUSE = {"lighthouse.txt": "The Quenby lighthouse is painted green. Its keeper is Ann Rowe.\n"}


@pytest.fixture(scope="module")
def start_own(tmp_path_factory):
    """Start the web chat over a folder of one's own (no Guangdong article), on any host; stopped at the end."""
    from chatbot import Chatbot

    apps = []

    def start_own_(host: str, **kwargs):
        folder = tmp_path_factory.mktemp("own")
        docs = folder / "docs"
        docs.mkdir()
        for name, text in LIGHTHOUSE.items():
            (docs / name).write_text(text, encoding="utf-8")
        bot = Chatbot.from_config(docs=docs, index=folder / "index")
        app, url = start(bot, host=host, port=free_port(), **kwargs)
        apps.append(app)
        return bot, url.replace("0.0.0.0", "127.0.0.1"), docs

    yield start_own_
    for app in apps:
        app.close()


@pytest.fixture(scope="module")
def shared(start_own):
    """Listening on every address, without a password, uploads not allowed."""
    return start_own("0.0.0.0")


@pytest.mark.parametrize(
    "host, auth, allow, off",
    [
        ("127.0.0.1", None, False, False),
        ("localhost", None, False, False),
        ("::1", None, False, False),
        ("0.0.0.0", None, False, True),
        ("192.168.1.20", None, False, True),
        ("", None, False, True),
        ("0.0.0.0", ("ann", "secret"), False, False),
        ("0.0.0.0", None, True, False),
    ],
)
def test_uploads_are_off_when_shared_without_a_password_unless_allowed(host, auth, allow, off):
    reason = uploads_refusal(host, auth, allow)
    assert bool(reason) == off
    if off:
        assert "without a password" in reason and "--auth" in reason and "--allow-uploads" in reason


@pytest.mark.parametrize("flag, config, allowed", [([], "", False), (["--allow-uploads"], "", True), ([], "true", True)])
def test_serve_takes_allow_uploads_from_the_flag_or_the_config(monkeypatch, tmp_path, seed_docs, flag, config, allowed):
    import chatbot.app.web.server
    from chatbot.app.cli import main

    seen = {}
    monkeypatch.setattr(chatbot.app.web.server, "serve", lambda bot, **kwargs: seen.update(kwargs, bot=bot))
    (tmp_path / "c.toml").write_text(f"[ui]\nallow_uploads = {config or 'false'}\n", encoding="utf-8")
    args = ["serve", "--host", "0.0.0.0", "--config", str(tmp_path / "c.toml"), "--docs", str(seed_docs), *flag]
    assert main(args) == 0
    assert seen["host"] == "0.0.0.0" and (seen["allow_uploads"] or seen["bot"].config.ui.allow_uploads) == allowed


def test_examples_are_offered_only_for_the_folder_they_were_written_for(seed_bot, make_bot, tmp_path):
    """A folder of one's own was offered a seed question its documents "answered" at low confidence."""
    from chatbot import Chatbot
    from chatbot.config import UiConfig

    seed_examples = list(UiConfig().examples)
    seeds = Chatbot.from_config(index=tmp_path / "seeds-index")  # seeds/ itself (read, never written)
    assert offered_examples(seeds) == seed_examples  # by config/default.toml
    assert offered_examples(seed_bot) == []  # a copy of seeds/ is a folder of one's own
    assert offered_examples(seed_bot.replace(ui={"examples_for": str(seed_bot.config.paths.docs)})) == seed_examples
    own = make_bot(LIGHTHOUSE, ui={"examples": ["What alternative to Android is mentioned?"]})
    assert offered_examples(own) == []
    config = tmp_path / "own.toml"  # a config file with examples of its own: they are for its own folder
    config.write_text(
        f'[paths]\ndocs = "{own.config.paths.docs}"\nindex = "{own.config.paths.index}"\n'
        '[ui]\nexamples = ["Who keeps the Quenby lighthouse?", "What alternative to Android is mentioned?"]\n',
        encoding="utf-8",
    )
    assert offered_examples(Chatbot.from_config(config)) == ["Who keeps the Quenby lighthouse?"]


def test_examples_are_only_those_the_documents_answer(seed_bot, make_bot):
    from chatbot.config import UiConfig

    seed_examples = UiConfig().examples
    assert answered_examples(seed_bot, seed_examples) == list(seed_examples)
    own = make_bot(LIGHTHOUSE)
    assert answered_examples(own, seed_examples) == []
    assert answered_examples(own, ["Who keeps the Quenby lighthouse?", *seed_examples]) == [
        "Who keeps the Quenby lighthouse?"
    ]


def _get(url: str) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _upload_over_http(url: str, name: str, content: bytes) -> tuple[int, bytes]:
    """POST a file to Gradio's own upload route, as the page's file picker does."""
    boundary = "chatbot-test-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return _post(f"{url}gradio_api/upload", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def _join(url: str, fn_index: int, data: list, session: str) -> dict:
    """Run event `fn_index` through the queue over plain HTTP, as the page itself does; the final message, or
    {"refused": status} when the queue does not take it."""
    status, reply = _post(
        f"{url}gradio_api/queue/join",
        json.dumps({"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None}).encode(),
        {"Content-Type": "application/json"},
    )
    if status != 200:
        return {"refused": status}
    event_id = json.loads(reply)["event_id"]
    import urllib.request

    with urllib.request.urlopen(f"{url}gradio_api/queue/data?session_hash={session}", timeout=120) as stream:
        for line in stream:
            if line.startswith(b"data: "):
                message = json.loads(line[6:])
                if message.get("event_id") == event_id and message.get("msg") == "process_completed":
                    return message
    return {}


def _handlers(url: str) -> dict[str, int]:
    """The app's event handlers, by name, with their numbers (fn_index), from its config as the page reads it."""
    status, body = _get(f"{url}config")
    assert status == 200
    return {dependency["api_name"]: number for number, dependency in enumerate(json.loads(body)["dependencies"])}


def test_over_http_the_upload_handler_is_reachable_only_when_uploads_are_on(server, shared, tmp_path):
    """What a visitor's script can do with plain HTTP requests. On the loopback page the upload handler saves a
    file it is sent (the page's own way of calling it); shared without a password, there is no such handler to
    call, Gradio's own upload route takes no file, and no handler of the page writes anything when called."""
    from gradio.utils import get_upload_folder

    bot, url, docs = server
    handlers = _handlers(url)
    assert {"add", "remove", "restore"} <= set(handlers)
    status, paths = _upload_over_http(url, "via-http.txt", b"The Hollin bridge has nine arches.\n")
    assert status == 200
    message = _join(url, handlers["add"], [[{"path": json.loads(paths)[0], "orig_name": "via-http.txt",
                                             "meta": {"_type": "gradio.FileData"}}]], "probe-on")
    assert message.get("success"), message
    assert (bot.config.paths.uploads_folder / "via-http.txt").exists()
    assert not _in_gradio_temp("via-http.txt")
    Uploads.of(bot.config).path_of(".uploads/via-http.txt").unlink()
    bot.index()

    own, shared_url, own_docs = shared
    before = _tree(own_docs)
    handlers = _handlers(shared_url)
    assert not {"add", "ask_to_remove", "remove", "restore", "cancel"} & set(handlers), handlers
    status, _ = _upload_over_http(shared_url, "refused.txt", b"The Hollin bridge has nine arches.\n")
    assert status == 413 and not _in_gradio_temp("refused.txt")
    planted = Path(get_upload_folder()) / "planted-by-test" / "planted.txt"  # as if a file had got there
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text("The Hollin bridge has nine arches.\n", encoding="utf-8")
    file = {"path": str(planted), "orig_name": "planted.txt", "meta": {"_type": "gradio.FileData"}}
    try:
        for number in handlers.values():
            _join(shared_url, number, [[file]], f"probe-{number}")
    finally:
        shutil.rmtree(planted.parent)
    assert not own.config.paths.uploads_folder.exists()
    assert _tree(own_docs) == before
    assert [doc["path"] for doc in own.data.documents] == ["lighthouse.txt"]


# ----- the page in a real browser --------------------------------------------------------------------------
# Each of these is marked slow: `make quick` leaves them out, `make test` and CI run them.


@pytest.fixture(scope="module")
def browser():
    executable = chromium_executable()
    if executable is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium; or set CHROMIUM=/path/to/it)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=ANSWER_TIMEOUT)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Page:
    """A fresh visitor's tab on the chat, recording any dialog a script might open."""

    def __init__(self, browser, url: str, width: int = 1280, height: int = 900) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        self.context.set_default_timeout(ANSWER_TIMEOUT)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.goto(url)
        self.page.locator("#qa-question textarea").wait_for()

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def ask(self, question: str) -> None:
        """Type the question and press Enter; wait for its answer (or abstention) to appear."""
        done = self.page.locator("#qa-chat .qa-answer, #qa-chat .qa-abstain")
        count = done.count()
        box = self.page.locator("#qa-question textarea")
        box.fill(question)
        box.press("Enter")
        self.page.wait_for_function(
            "n => document.querySelectorAll('#qa-chat .qa-answer, #qa-chat .qa-abstain').length > n", arg=count
        )

    def open(self, accordion: str) -> None:
        """Open an accordion and let Gradio settle its fields. Gradio fills the fields of a newly shown
        accordion with their initial values on the next animation frame, so anything typed before that
        frame is overwritten; on a busy machine the frame can come well after the fields are visible."""
        self.page.get_by_text(accordion, exact=True).click()
        self.page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")

    def set_number(self, label: str, typed: str, shown: str) -> None:
        """Type into a settings field and leave it. On a busy machine Gradio's first fill of a newly shown
        accordion (see `open`) can come later still and overwrite what was typed: then it is typed again, until
        the field's slider shows `shown` or half a minute has passed."""
        from playwright.sync_api import expect

        field = self.page.get_by_label(re.compile(f"^number input for {label}"))
        slider = self.page.get_by_label(re.compile(f"^range slider for {label}"))
        deadline = time.monotonic() + 30
        while True:
            field.fill(typed)
            field.press("Tab")
            try:
                expect(slider).to_have_value(shown, timeout=2000)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise

    def open_documents(self) -> None:
        self.open("Documents")
        self.page.locator("#qa-documents table").wait_for()

    STATUS = "() => [...document.querySelectorAll('#qa-status p')].map(line => line.innerText).join('\\n')"

    def upload(self, path: Path) -> str:
        """Upload a file through the page; returns the status lines once indexing has finished."""
        before = self.page.evaluate(self.STATUS)
        self.page.locator("#qa-upload input[type=file]").set_input_files(str(path))
        return self.upload_status(before)

    def upload_status(self, before: str = "") -> str:
        """The status lines (the page's own, without Gradio's timer), once they are no longer `before` and
        indexing an upload has finished (or the upload was refused)."""
        self.page.wait_for_function(
            f"""before => {{
                const text = ({self.STATUS})();
                return text !== before && /indexed|could not|only|larger|empty/.test(text) && !text.includes("Adding ");
            }}""",
            arg=before,
            timeout=INDEX_TIMEOUT,
        )
        return self.page.evaluate(self.STATUS)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser, server):
    tab = Page(browser, server[1])
    yield tab
    tab.close()


def page_answer(page: Page, question: str) -> str:
    """Ask on the page and return the text of the answer (or abstention) it shows."""
    page.ask(question)
    return page.page.locator("#qa-chat .qa-answer, #qa-chat .qa-abstain").last.inner_text()


def _tree(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `folder` with its bytes and inode: what "untouched" means."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_ino)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _in_gradio_temp(name: str) -> list[Path]:
    """Files of that name in Gradio's temporary folder (where it keeps what it received)."""
    from gradio.utils import get_upload_folder

    return list(Path(get_upload_folder()).rglob(name))


@pytest.mark.slow
def test_browser_ask_with_enter_then_follow_a_citation(page):
    from playwright.sync_api import expect

    page.ask("Where is DeepSeek based?")
    chat = page.page.locator("#qa-chat")
    expect(chat.locator(".qa-quote").first).to_contain_text("was revealed to be based in Zhejiang province")
    expect(chat.locator("a.qa-cite", has_text="[1]").first).to_be_visible()
    confidence = chat.locator(".qa-conf").first
    expect(confidence).to_have_text(re.compile(r"^(high|medium|low) confidence$"))
    expect(confidence).to_have_attribute("title", re.compile(r"^confidence [01]\.\d\d of 1$"))

    source = page.page.locator("#qa-src-1-1")
    chat.locator("a.qa-cite", has_text="[1]").first.click()
    expect(source).to_be_in_viewport()
    quoted = chat.locator(".qa-quote").first.inner_text().strip("“”")
    expect(source.locator("mark").first).to_have_text(quoted)
    expect(source).to_contain_text("guangdong-tech-self-reliance.txt, line")
    assert page.dialogs == []


@pytest.mark.slow
def test_browser_citation_works_from_the_keyboard(page):
    from playwright.sync_api import expect

    page.ask("Where is DeepSeek based?")
    page.ask("Which chip did Guangdong highlight?")
    earlier = page.page.locator('#qa-chat a.qa-cite[href="#qa-src-1-1"]').first
    expect(page.page.locator("#qa-src-1-1")).not_to_be_in_viewport()  # folded away under "Earlier answers"
    earlier.focus()
    page.page.keyboard.press("Enter")
    expect(page.page.locator("#qa-turn-1")).to_have_attribute("open", "")
    expect(page.page.locator("#qa-src-1-1")).to_be_in_viewport()
    expect(page.page.locator("#qa-src-1-1 mark").first).to_contain_text("Zhejiang")


@pytest.mark.slow
def test_browser_a_question_asked_while_one_is_pending_is_answered_in_turn(page, server, monkeypatch):
    """The box empties at once on Enter; a second question asked before the first is answered waits for it
    instead of being lost, and what is typed meanwhile stays in the box."""
    from playwright.sync_api import expect

    bot = server[0]
    ask = bot.ask
    monkeypatch.setattr(bot, "ask", lambda *args, **kwargs: (time.sleep(1.5), ask(*args, **kwargs))[1])
    box = page.page.locator("#qa-question textarea")
    box.fill("Where is DeepSeek based?")
    box.press("Enter")
    box.press_sequentially("What alternative to Android is mentioned?")
    box.press("Enter")
    box.press_sequentially("a draft")
    chat = page.page.locator("#qa-chat")
    expect(chat).to_contain_text("Waiting for its turn", timeout=5000)
    expect(page.page.locator("#qa-hint")).to_contain_text("queued")
    expect(chat.locator(".qa-answer")).to_have_count(2)
    expect(chat.locator(".qa-quote").first).to_contain_text("Zhejiang")
    expect(chat.locator(".qa-quote").last).to_contain_text("HarmonyOS")
    expect(chat.locator(".qa-pending")).to_have_count(0)
    assert box.input_value() == "a draft"


@pytest.mark.slow
def test_browser_an_empty_question_gets_a_hint(page):
    from playwright.sync_api import expect

    box = page.page.locator("#qa-question textarea")
    box.fill("   ")
    box.press("Enter")
    expect(page.page.locator("#qa-hint")).to_have_text("Type a question first.")
    assert box.input_value() == ""
    expect(page.page.locator("#qa-chat .message")).to_have_count(0)


@pytest.mark.slow
def test_browser_a_question_without_a_word_gets_a_hint(page):
    from playwright.sync_api import expect

    box = page.page.locator("#qa-question textarea")
    box.fill("?")
    box.press("Enter")
    expect(page.page.locator("#qa-hint")).to_have_text(
        "The question is empty: it has no words, only punctuation, symbols or control characters."
    )
    expect(page.page.locator("#qa-chat .message")).to_have_count(0)


@pytest.mark.slow
def test_browser_the_question_box_takes_no_more_than_the_cap(page):
    box = page.page.locator("#qa-question textarea")
    assert box.get_attribute("maxlength") == "2000"


@pytest.mark.slow
def test_browser_a_long_question_keeps_the_layout(page):
    """A 2,000-character question without a space wraps in the chat and the sources panel, and heads its
    sources shortened, rather than stretching the page."""
    from playwright.sync_api import expect

    question = "Where is DeepSeek based?" + "x" * 1_976  # the longest the box takes ([answer] max_question_chars)
    page.ask(question)
    page.ask("Which chip did Guangdong highlight?")
    widths = page.page.evaluate(
        """() => ["#qa-chat", "#qa-sources"].map(s => document.querySelector(s)).concat([document.documentElement])
            .map(e => [e.scrollWidth, e.clientWidth])"""
    )
    for scroll_width, client_width in widths:
        assert scroll_width <= client_width + 1
    summary = page.page.locator("#qa-turn-1 summary")
    expect(summary).to_have_attribute("title", question)
    assert len(summary.inner_text()) < 160


# The contrast ratio (WCAG 2) of each element's text with what lies behind it, opacity and all.
CONTRAST = """selector => {
  const rgba = text => { const m = text.match(/[\\d.]+/g).map(Number); return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1]; };
  const mix = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
  const channel = v => (v /= 255) <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  const luminance = c => 0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2]);
  const ancestors = el => { const all = []; for (let e = el; e; e = e.parentElement) all.push(e); return all; };
  return [...document.querySelectorAll(selector)].map(el => {
    let back = [255, 255, 255, 1];
    const layers = ancestors(el).map(e => rgba(getComputedStyle(e).backgroundColor)).filter(c => c[3] > 0);
    const opaque = layers.findIndex(c => c[3] === 1);
    for (const layer of layers.slice(0, opaque < 0 ? layers.length : opaque + 1).reverse()) back = mix(layer, back);
    const opacity = ancestors(el).reduce((o, e) => o * Number(getComputedStyle(e).opacity), 1);
    const color = rgba(getComputedStyle(el).color);
    const [a, b] = [luminance(mix([color[0], color[1], color[2], color[3] * opacity], back)), luminance(back)];
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  });
}"""


@pytest.mark.slow
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_browser_messages_read_well_and_are_labelled_with_their_text(browser, server, theme):
    tab = Page(browser, f"{server[1]}?__theme={theme}")
    try:
        tab.ask("Where is DeepSeek based?")
        tab.ask("What is the boiling point of mercury on Mars?")  # a low confidence too
        ratios = tab.page.evaluate(CONTRAST, "#qa-chat .qa-conf")
        assert len(ratios) == 2 and min(ratios) >= 4.5, ratios
        labels = tab.page.evaluate(
            """() => [...document.querySelectorAll('#qa-chat [aria-label*="message: "]')]
                .map(e => e.getAttribute("aria-label"))"""
        )
        assert labels[0] == "user's message: Where is DeepSeek based?"
        assert len(labels) == 4 and "Zhejiang" in labels[1]
        assert not [label for label in labels if "<" in label or "&#" in label]
    finally:
        tab.close()


@pytest.mark.slow
def test_browser_abstention_offers_nearest_text(page):
    from playwright.sync_api import expect

    page.ask("What is the boiling point of mercury on Mars?")
    message = page.page.locator("#qa-chat .qa-abstain").last
    expect(message).to_contain_text("The documents do not answer this question.")
    expect(message).to_contain_text("Nearest text (not an answer)")
    expect(page.page.locator("#qa-chat .qa-quote")).to_have_count(0)
    expect(page.page.locator("#qa-sources")).to_contain_text("Nearest text — not an answer")
    expect(page.page.locator("#qa-sources mark")).to_have_count(0)


@pytest.mark.slow
def test_browser_example_question(page):
    from playwright.sync_api import expect

    example = "Which chip did Guangdong highlight?"  # the first of config/default.toml's [ui] examples
    page.page.locator("#qa-chat").get_by_text(example).click()
    expect(page.page.locator("#qa-chat .qa-answer, #qa-chat .qa-abstain")).to_have_count(1)
    expect(page.page.locator("#qa-chat")).to_contain_text(example)
    expect(page.page.locator("#qa-sources")).to_contain_text(f"for “{example}”")


@pytest.mark.slow
def test_browser_settings_apply_and_conversation_downloads(page):
    from playwright.sync_api import expect

    page.open("Settings")
    for label, value in (("Number of quotes", "1"), ("Abstention threshold", "0")):
        page.set_number(label, value, value)
        expect(page.page.get_by_label(re.compile(f"^range slider for {label}"))).to_have_value(value)
    page.ask("Which chip did Guangdong highlight?")
    expect(page.page.locator("#qa-chat .qa-quote")).to_have_count(1)

    with page.page.expect_download() as download:
        page.page.get_by_role("button", name="Download JSON lines").click()
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["question"] == "Which chip did Guangdong highlight?" and len(record["quotes"]) == 1
    with page.page.expect_download() as download:
        page.page.get_by_role("button", name="Download Markdown").click()
    assert download.value.suggested_filename == "conversation.md"
    assert "## Which chip did Guangdong highlight?" in Path(download.value.path()).read_text(encoding="utf-8")


@pytest.mark.slow
def test_browser_upload_then_ask_about_it(page, server, tmp_path):
    """An upload goes to the uploads folder, never the documents folder, and leaves nothing in Gradio's
    temporary folder; it is listed and cited as .uploads/NAME."""
    from playwright.sync_api import expect

    bot, _, docs = server
    before = _tree(docs)
    upload = tmp_path / "River notes.md"
    upload.write_text("# Rivers\n\nThe Zorblat river is 42 kilometres long.\n", encoding="utf-8")
    page.open_documents()
    assert "River notes.md is indexed (added as .uploads/River notes.md)" in page.upload(upload)
    listing = page.page.locator("#qa-documents")
    expect(listing.locator("tr", has_text=".uploads/River notes.md")).to_contain_text("uploads")
    expect(listing.locator("tr", has_text=SEED_FILE)).to_contain_text("documents folder")
    expect(listing).to_contain_text(str(bot.config.paths.uploads_folder))
    page.ask("How long is the Zorblat river?")
    expect(page.page.locator("#qa-chat .qa-quote").last).to_contain_text("The Zorblat river is 42 kilometres long.")
    expect(page.page.locator("#qa-sources")).to_contain_text(".uploads/River notes.md")
    assert _tree(docs) == before
    assert (bot.config.paths.uploads_folder / "River notes.md").read_text(encoding="utf-8").startswith("# Rivers")
    assert not _in_gradio_temp("River notes.md")


@pytest.mark.slow
def test_browser_a_same_named_upload_keeps_the_original(page, server, tmp_path):
    from playwright.sync_api import expect

    bot, _, docs = server
    original = (docs / SEED_FILE).read_bytes()
    upload = tmp_path / SEED_FILE
    upload.write_text("The Wexcombe ferry leaves at dawn.\n", encoding="utf-8")
    page.open_documents()
    status = page.upload(upload)
    assert f"{SEED_FILE} is indexed (added as .uploads/{SEED_FILE}; the document {SEED_FILE} of the documents " \
        "folder is kept as it was)" in status
    upload.write_text("The Wexcombe ferry returns at dusk.\n", encoding="utf-8")
    status = page.upload(upload)
    stem = SEED_FILE.removesuffix(".txt")
    assert f"added as .uploads/{stem} (2).txt; the upload .uploads/{SEED_FILE} that was already there is kept" in status
    assert (docs / SEED_FILE).read_bytes() == original
    uploads = bot.config.paths.uploads_folder
    assert (uploads / SEED_FILE).read_text(encoding="utf-8") == "The Wexcombe ferry leaves at dawn.\n"
    assert (uploads / f"{stem} (2).txt").read_text(encoding="utf-8") == "The Wexcombe ferry returns at dusk.\n"
    listing = page.page.locator("#qa-documents")
    for name in (SEED_FILE, f".uploads/{SEED_FILE}", f".uploads/{stem} (2).txt"):
        expect(listing.locator("td", has_text=re.compile(f"^{re.escape(name)}$"))).to_have_count(1)
    assert "Guangdong" in page_answer(page, "Which chip did Guangdong highlight?")  # the article answers as before
    for name in (SEED_FILE, f"{stem} (2).txt"):
        Uploads.of(bot.config).path_of(f".uploads/{name}").unlink()
    bot.index()


@pytest.mark.slow
def test_browser_while_an_upload_is_indexed_others_are_answered_from_the_index_as_it_was(
    browser, server, tmp_path, monkeypatch
):
    """Indexing a large upload takes minutes; meanwhile another visitor's question is answered at once from
    the documents as they were, with a note saying so, and the uploader is told what is going on."""
    from playwright.sync_api import expect

    bot = server[0]
    index, indexing, finish = bot.index, threading.Event(), threading.Event()

    def slow_index(*args, **kwargs):
        indexing.set()
        finish.wait(ANSWER_TIMEOUT / 1000)
        return index(*args, **kwargs)

    monkeypatch.setattr(bot, "index", slow_index)
    upload = tmp_path / "ferries.txt"
    upload.write_text("The Ostervik ferry sails at noon.\n", encoding="utf-8")
    uploader, other = Page(browser, server[1]), Page(browser, server[1])
    try:
        uploader.open_documents()
        uploader.page.locator("#qa-upload input[type=file]").set_input_files(str(upload))
        expect(uploader.page.locator("#qa-status")).to_contain_text("Adding .uploads/ferries.txt", timeout=30_000)
        assert indexing.wait(30)
        other.ask("Where is DeepSeek based?")
        expect(other.page.locator("#qa-chat .qa-quote").last).to_contain_text("Zhejiang")
        expect(other.page.locator("#qa-chat .qa-note")).to_contain_text("as they were before")
        finish.set()
        assert "ferries.txt is indexed (added as .uploads/ferries.txt)" in uploader.upload_status()
        other.ask("When does the Ostervik ferry sail?")
        expect(other.page.locator("#qa-chat .qa-quote").last).to_contain_text("The Ostervik ferry sails at noon.")
        expect(other.page.locator("#qa-chat .qa-note")).to_have_count(1)  # the first answer's only
    finally:
        finish.set()
        uploader.close()
        other.close()


@pytest.mark.slow
def test_browser_refuses_a_wrong_upload(page, server, tmp_path):
    from playwright.sync_api import expect

    upload = tmp_path / "program.exe"
    upload.write_bytes(b"MZ\x00\x00")
    page.open_documents()
    page.page.locator("#qa-upload input[type=file]").set_input_files(str(upload))
    message = page.page.get_by_text(re.compile(r"Invalid file type|only \.txt, \.md files can be added"))
    expect(message.first).to_be_visible()
    assert not list(server[2].rglob("*.exe")) and not list(server[0].config.paths.uploads_folder.rglob("*.exe"))
    assert not _in_gradio_temp("program.exe")  # removed from Gradio's temporary folder at once


@pytest.mark.slow
def test_browser_upload_status_colours_each_file_by_its_outcome(page, server, tmp_path):
    from playwright.sync_api import expect

    good, bad = tmp_path / "kites.md", tmp_path / "blob.txt"
    good.write_text("The Varnholm kite festival is held in May.\n", encoding="utf-8")
    bad.write_bytes(b"\x00\x01\x02binary\x00" * 50)
    page.open_documents()
    page.page.locator("#qa-upload input[type=file]").set_input_files([str(good), str(bad)])
    status = page.page.locator("#qa-status")
    expect(status).to_contain_text("blob.txt: no text could be read", timeout=INDEX_TIMEOUT)
    expect(status.locator("p", has_text="kites.md is indexed")).not_to_have_class("qa-status-error")
    expect(status.locator("p", has_text="blob.txt")).to_have_class("qa-status-error")
    assert not (server[2] / "blob.txt").exists() and not (server[0].config.paths.uploads_folder / "blob.txt").exists()
    assert not _in_gradio_temp("blob.txt") and not _in_gradio_temp("kites.md")


@pytest.mark.slow
def test_browser_number_of_quotes_is_whole(page):
    from playwright.sync_api import expect

    page.open("Settings")
    page.set_number("Number of quotes", "2.5", "3")
    field = page.page.get_by_label(re.compile("^number input for Number of quotes"))
    expect(field).to_have_value("3")
    expect(page.page.get_by_label(re.compile("^range slider for Number of quotes"))).to_have_value("3")


@pytest.mark.slow
def test_browser_hostile_document_shows_as_text_and_runs_nothing(page, server, tmp_path):
    from playwright.sync_api import expect

    bot, _, docs = server
    (docs / "<b onmouseover=alert(1)>odd.md").write_text("An odd name for a plain note about the weather.\n")
    bot.index()
    upload = tmp_path / "trap <img src=x onerror=alert(1)>.md"
    upload.write_text(HOSTILE, encoding="utf-8")
    page.open_documents()
    assert "is indexed" in page.upload(upload)
    page.ask("What is the trapdoor payload?")
    page.ask("What is the trapdoor link?")
    page.page.locator("#qa-documents").hover()
    chat, sources, documents = (page.page.locator(f"#qa-{name}") for name in ("chat", "sources", "documents"))
    expect(chat).to_contain_text("<script>window.__pwned = 1; alert('script')</script>")
    expect(sources).to_contain_text("<img src=x onerror=\"window.__pwned = 2; alert('img')\">")
    expect(sources).to_contain_text("[click me](javascript:alert('md'))")
    expect(documents).to_contain_text("<b onmouseover=alert(1)>odd.md")
    for area in (chat, sources, documents):
        expect(area.locator("script, img, iframe, object, embed, b, a[href^='javascript']")).to_have_count(0)
    page.page.wait_for_timeout(500)
    assert page.page.evaluate("window.__pwned") is None
    assert page.dialogs == []


@pytest.mark.slow
def test_browser_remove_asks_removes_only_uploads_and_can_be_undone(page, server, tmp_path):
    from playwright.sync_api import expect

    bot, _, docs = server
    before = _tree(docs)
    (tmp_path / "to-remove.txt").write_text("The Quenby lighthouse is painted green.\n", encoding="utf-8")
    Uploads.of(bot.config).add(tmp_path / "to-remove.txt")
    bot.index()
    page.page.reload()
    page.open_documents()
    choice = page.page.locator("#qa-remove-choice input")
    choice.click()
    expect(page.page.get_by_role("option", name="to-remove.txt")).to_be_visible()
    expect(page.page.get_by_role("option", name=SEED_FILE)).to_have_count(0)  # only uploads can be removed
    page.page.get_by_role("option", name="to-remove.txt").click()

    page.page.locator("#qa-remove").click()  # asks first
    question = page.page.locator("#qa-confirm-text")
    expect(question).to_contain_text("Remove .uploads/to-remove.txt? It is taken out of the uploads folder")
    assert (bot.config.paths.uploads_folder / "to-remove.txt").exists()
    page.page.locator("#qa-cancel-remove").click()
    expect(page.page.locator("#qa-status")).to_have_text("Nothing was removed.")
    expect(page.page.locator("#qa-confirm-remove")).to_be_hidden()
    assert (bot.config.paths.uploads_folder / "to-remove.txt").exists()

    choice.click()
    page.page.get_by_role("option", name="to-remove.txt").click()
    page.page.locator("#qa-remove").click()
    page.page.locator("#qa-confirm-remove").click()
    status = page.page.locator("#qa-status")
    expect(status).to_contain_text(".uploads/to-remove.txt was removed", timeout=INDEX_TIMEOUT)
    expect(page.page.locator("#qa-documents")).not_to_contain_text("to-remove.txt")
    assert not (bot.config.paths.uploads_folder / "to-remove.txt").exists()
    assert ".uploads/to-remove.txt" not in [doc["path"] for doc in bot.data.documents]
    assert page_answer(page, "What colour is the Quenby lighthouse?").startswith("The documents do not answer")

    page.page.locator("#qa-restore-choice input").click()  # undo
    page.page.get_by_role("option", name="to-remove.txt").click()
    page.page.locator("#qa-restore").click()
    expect(status).to_contain_text(".uploads/to-remove.txt was restored.", timeout=INDEX_TIMEOUT)
    expect(page.page.locator("#qa-documents")).to_contain_text(".uploads/to-remove.txt")
    expect(page.page.locator("#qa-restore-row")).to_be_hidden()
    assert "painted green" in page_answer(page, "What colour is the Quenby lighthouse?")
    assert _tree(docs) == before  # nothing in the documents folder was written, renamed or deleted
    Uploads.of(bot.config).path_of(".uploads/to-remove.txt").unlink()
    bot.index()


@pytest.mark.slow
def test_browser_shared_without_a_password_says_why_uploads_are_off(browser, shared):
    """No way to upload or remove on the page, and a line saying why; and a folder of one's own is not offered
    the seed article's example questions."""
    from playwright.sync_api import expect

    tab = Page(browser, shared[1])
    try:
        tab.open_documents()
        off = tab.page.locator("#qa-uploads-off")
        expect(off).to_contain_text("Adding and removing documents is turned off")
        expect(off).to_contain_text("without a password")
        for element in ("#qa-upload", "#qa-remove", "#qa-restore", "#qa-confirm-remove"):
            expect(tab.page.locator(element)).to_have_count(0)
        expect(tab.page.locator("#qa-documents")).to_contain_text("lighthouse.txt")
        chat = tab.page.locator("#qa-chat")
        expect(chat).not_to_contain_text("Guangdong")
        expect(chat.get_by_role("button")).to_have_count(0)  # no example questions at all
        assert "Ann Rowe" in page_answer(tab, "Who is the keeper of the Quenby lighthouse?")
    finally:
        tab.close()


@pytest.mark.slow
def test_browser_shared_with_uploads_allowed_offers_them(browser, start_own):
    from playwright.sync_api import expect

    _, url, _ = start_own("0.0.0.0", allow_uploads=True)
    tab = Page(browser, url)
    try:
        tab.open_documents()
        expect(tab.page.locator("#qa-upload")).to_be_visible()
        expect(tab.page.locator("#qa-uploads-off")).to_have_count(0)
    finally:
        tab.close()


@pytest.mark.slow
def test_browser_the_document_list_is_current_each_time_it_is_opened(page, server):
    """Another visitor's upload or removal shows when the Documents panel is next opened, without a reload."""
    from playwright.sync_api import expect

    bot, _, docs = server
    added = docs / "from-another-tab.txt"
    added.write_text("The Quenby ferry leaves at noon.\n", encoding="utf-8")
    try:
        bot.index()  # as another visitor's upload does, after this page has loaded its list
        page.open_documents()
        listing = page.page.locator("#qa-documents")
        expect(listing).to_contain_text("from-another-tab.txt")
        page.page.get_by_text("Documents", exact=True).click()  # close the panel
        added.unlink()
        bot.index()
        page.open("Documents")
        expect(listing).not_to_contain_text("from-another-tab.txt")
    finally:
        added.unlink(missing_ok=True)
        bot.index()


@pytest.mark.slow
def test_browser_narrow_window(browser, server):
    """On a phone-sized window the sources stack below the chat; a citation scrolls down to its source."""
    from playwright.sync_api import expect

    tab = Page(browser, server[1], width=400, height=800)
    try:
        tab.ask("Where is DeepSeek based?")
        width, inner = tab.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width <= inner
        chat = tab.page.locator("#qa-chat").bounding_box()
        sources = tab.page.locator("#qa-sources").bounding_box()
        assert sources["y"] >= chat["y"] + chat["height"]  # stacked, not squeezed side by side
        source = tab.page.locator("#qa-src-1-1")
        expect(source).not_to_be_in_viewport()
        tab.page.locator("#qa-chat a.qa-cite").first.click()
        expect(source).to_be_in_viewport()
        assert tab.dialogs == []
    finally:
        tab.close()


def test_indexing_on_its_own_thread_reports_progress_then_the_outcome(make_bot, tmp_path):
    bot = make_bot({"orchard.txt": "Apples ripen in September. Pears follow in October.\n"})
    run = IndexingRun(bot)
    steps = list(run.progress())
    assert run.error is None and run.report.action == "built"
    assert all(0 < done <= total for done, total in steps) and steps[-1][0] == steps[-1][1]
    assert run.pace() is not None and run.pace()[1] == 0  # all done: nothing left
    (tmp_path / "docs" / "orchard.txt").unlink()
    failed = IndexingRun(bot)
    assert list(failed.progress()) == [] and failed.report is None
    assert "no documents" in str(failed.error)


def test_the_time_left_of_an_upload_is_told_in_words():
    assert [duration_text(s) for s in (0, 8.4, 185, 7800)] == ["0 s", "8 s", "3 min 5 s", "2 h 10 min"]


def test_each_session_keeps_one_conversation_whatever_event_asks_for_it():
    class Request:  # what the handlers read of a gr.Request
        def __init__(self, session_hash: str) -> None:
            self.session_hash = session_hash

    conversations = Conversations(capacity=2)
    first = conversations.of(Request("a"))
    first.add("Where is DeepSeek based?", {})
    assert conversations.of(Request("a")) is first and conversations.of(Request("b")) is not first
    conversations.of(Request("c"))  # a third visitor: the least recently seen one ("a" was seen before "b")
    assert conversations.of(Request("b")).turns == [] and conversations.of(Request("a")).turns == []


def test_a_port_in_use_is_one_line_naming_it(seed_docs, capsys, monkeypatch):
    """Gradio's own wording sends people to an environment variable; `serve` says what to do, before it loads
    anything."""
    import socket

    import chatbot.app.web.server
    from chatbot.app.cli import main

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert main(["serve", "--port", str(port), "--docs", str(seed_docs)]) == 1
        assert capsys.readouterr().err == f"error: port {port} is in use; pass --port N\n"
        # taken between the check and Gradio's own bind: the same line
        monkeypatch.setattr(chatbot.app.web.server, "check_port", lambda host, port: None)
        monkeypatch.setattr(chatbot.app.web.server.Chatbot, "warm_up", lambda self: None)
        assert main(["serve", "--port", str(port), "--docs", str(seed_docs)]) == 1
        assert capsys.readouterr().err == f"error: port {port} is in use; pass --port N\n"

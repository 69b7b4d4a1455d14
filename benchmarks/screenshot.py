"""Take the README's screenshot from the real page: start the web chat on the seed documents, ask a seed
question in headless Chromium, follow citation [1] and save the window as a small PNG.

Usage example:
    .venv/bin/python benchmarks/screenshot.py                      # writes docs/screenshot.png
    .venv/bin/python benchmarks/screenshot.py --question "Where is DeepSeek based?" -o /tmp/shot.png

Needs Debian's `chromium` (or CHROMIUM=/path/to/chromium) and the `playwright` package; no download.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import CHROMIUM_ARGS, chromium_executable, free_port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--question", default="Which chip did Guangdong highlight?")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=820)
    args = parser.parse_args()

    chromium = chromium_executable()
    if chromium is None:
        print("error: Chromium is not installed (Debian: apt-get install chromium)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    from chatbot import Chatbot
    from chatbot.app.web.server import start

    with tempfile.TemporaryDirectory(prefix="chatbot-screenshot-") as index:
        bot = Chatbot.from_config(docs=ROOT / "seeds", index=index)  # the seeds, indexed aside
        app, url = start(bot, port=free_port())
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": args.width, "height": args.height})
                page.set_default_timeout(180_000)
                page.goto(url)
                box = page.locator("#qa-question textarea")
                box.fill(args.question)
                box.press("Enter")
                page.locator("#qa-chat .qa-answer, #qa-chat .qa-abstain").first.wait_for()
                if page.locator("#qa-chat .qa-abstain").count():
                    print(f"error: the chatbot abstained on {args.question!r}; no screenshot taken", file=sys.stderr)
                    return 1
                page.locator("#qa-chat a.qa-cite").first.click()
                page.wait_for_timeout(2500)  # the smooth scroll and the highlight's flash are over
                page.locator("#qa-question textarea").blur()
                png = page.screenshot()
                browser.close()
        finally:
            app.close()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(_small_png(png))
    print(f"wrote {args.output} ({args.output.stat().st_size // 1024} KB)")
    return 0


def _small_png(png: bytes) -> bytes:
    """The screenshot with a 256-colour palette: a fraction of the size, the same to the eye."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


if __name__ == "__main__":
    sys.exit(main())

"""`python -m chatbot`: the same as the `chatbot` command."""

import sys

from .app.cli import main

sys.exit(main())

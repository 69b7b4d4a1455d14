"""`python -m chatbot`: the same as the `chatbot` command."""

import sys

from .cli import main

sys.exit(main())

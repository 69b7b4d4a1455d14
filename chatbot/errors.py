"""The one exception type for mistakes a user can make and fix (bad path, bad config, empty question)."""


class ChatbotError(Exception):
    """A user-facing error: its message is one clear line, shown without a traceback."""

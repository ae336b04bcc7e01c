"""Errors whose message is meant for the person using the app, in English and Chinese."""

from __future__ import annotations

from explorer.core.text import pick


class UserFacingError(ValueError):
    """A problem the user can fix (bad image, wrong checkpoint...), with a clear message."""

    def __init__(self, message_en: str, message_zh: str | None = None):
        super().__init__(message_en)
        self.message_en = message_en
        self.message_zh = message_zh or message_en

    def message(self, lang: str = "en") -> str:
        return pick((self.message_en, self.message_zh), lang)

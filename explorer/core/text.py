"""One way to hold and pick the page's two languages: a text is an (English, Chinese) pair, and
one check says which language a code means ("zh", "zh-CN", … are Chinese; anything else is
English). Every message, banner, note and label of the app picks its language here."""

from __future__ import annotations

from typing import Iterable

Bilingual = tuple[str, str]  # (English, Chinese)


def is_chinese(lang: object) -> bool:
    return isinstance(lang, str) and lang.strip().lower().startswith("zh")


def pick(text: Bilingual, lang: object) -> str:
    """The text in ``lang``."""
    return text[1] if is_chinese(lang) else text[0]


def numbered(texts: Iterable[Bilingual], lang: object, bullet: str = "{n}.") -> str:
    """Markdown list, one item per text, in ``lang`` (``bullet`` "-" for an unnumbered one)."""
    return "\n".join(f"{bullet.format(n=n)} {pick(text, lang)}" for n, text in enumerate(texts, start=1))

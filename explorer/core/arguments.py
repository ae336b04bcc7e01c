"""Checks for what a person or an API client sends, made before any model is loaded: one clear
message in English and Chinese that names the allowed values, and never more than a short
excerpt of what was sent (a 5000-character "model name" must not reach the log or the reply)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from explorer.core.errors import UserFacingError

MAX_ECHO = 40
MAX_SEED = 2**31 - 1  # torch and numpy generators both take it; the page's seed boxes too


class ArgumentError(UserFacingError):
    """An argument outside what the endpoint accepts."""


def excerpt(value: Any) -> str:
    """``repr(value)``, cut to ``MAX_ECHO`` characters."""
    text = repr(value)
    return text if len(text) <= MAX_ECHO else f"{text[:MAX_ECHO - 1]}…"


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    return None


def whole_number(value: Any, low: int, high: int, name: tuple[str, str],
                 sentinel: tuple[int, str, str] | None = None) -> int:
    """``value`` as an int in ``low..high`` (or the ``sentinel`` value, with its meaning in both
    languages, e.g. ``(-1, "the last layer", "最后一层")``). Whole floats (3.0) pass; bools, text,
    NaN and fractions do not."""
    number = _whole(value)
    if number is not None and (low <= number <= high or (sentinel is not None and number == sentinel[0])):
        return number
    also_en = f", or {sentinel[0]} for {sentinel[1]}" if sentinel else ""
    also_zh = f"，或用 {sentinel[0]} 表示{sentinel[2]}" if sentinel else ""
    raise ArgumentError(f"{name[0]} must be a whole number from {low} to {high}{also_en} (got {excerpt(value)}).",
                        f"{name[1]}必须是 {low} 到 {high} 之间的整数{also_zh}（收到 {excerpt(value)}）。")


def fraction(value: Any, low: float, high: float, name: tuple[str, str]) -> float:
    """``value`` as a finite float in ``low..high``."""
    number = None if isinstance(value, bool) else value
    if isinstance(number, (int, float, np.integer, np.floating)) and math.isfinite(number) \
            and low <= float(number) <= high:
        return float(number)
    raise ArgumentError(f"{name[0]} must be a number from {low:g} to {high:g} (got {excerpt(value)}).",
                        f"{name[1]}必须是 {low:g} 到 {high:g} 之间的数（收到 {excerpt(value)}）。")


def choice(value: Any, allowed: Sequence[str], name: tuple[str, str]) -> str:
    """``value`` if it is one of ``allowed``."""
    if isinstance(value, str) and value in allowed:
        return value
    options = ", ".join(allowed)
    raise ArgumentError(f"{name[0]} must be one of {options} (got {excerpt(value)}).",
                        f"{name[1]}必须是以下之一：{options}（收到 {excerpt(value)}）。")


def seed(value: Any) -> int:
    """A random seed: a whole number from 0 to ``MAX_SEED``."""
    return whole_number(value, 0, MAX_SEED, ("The seed", "随机种子"))

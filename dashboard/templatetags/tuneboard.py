"""Small display filters shared by the page templates."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

register = template.Library()


@register.filter
def at_path(config: dict[str, Any], path: str) -> Any:
    """``config|at_path:"training.learning_rate"``: a value of a nested config, or None."""
    value: Any = config
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


@register.filter
def as_input(value: Any) -> str:
    """A config value as a form input shows it: empty for null, a list joined by commas."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


@register.filter
def money(value: Decimal | float | None) -> str:
    if value is None:
        return "—"
    amount = float(value)
    return f"${amount:,.4f}" if 0 < abs(amount) < 0.01 else f"${amount:,.2f}"


@register.filter
def score(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


@register.filter
def percent_of(part: Decimal | float | None, whole: Decimal | float | None) -> float:
    """Width of a progress bar, 0 to 100."""
    if not part or not whole:
        return 0.0
    return round(min(100.0, 100.0 * float(part) / float(whole)), 1)

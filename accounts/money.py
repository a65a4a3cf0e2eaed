"""How the product writes an amount of money, and a count or other figure in words.

Money: one currency per installation
(``settings.CURRENCY``, an ISO 4217 code; metrics.md), written with its sign before the
amount: "$1,234.56" for USD, "€1,234.56" for EUR, and by its code for a currency without a
sign here: "CHF 1,234.56". Pages, timeline facts, health reasons, CTA evidence, emails and
chart ticks all write it so.

Any other figure in words (a count of events, seats, tickets, days, an input's value) is
written by ``number_text``, with the same thousands separators as money: "12,500 events",
not "12500 events"; the API and CSV keep the plain numbers. A count with its noun is
written by ``count_text``, which says "1 attempt", not "1 attempts" (templates have
Django's ``pluralize`` for the same)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.conf import settings

CURRENCY_SIGNS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}


def currency_sign() -> str:
    """ "$" for USD (the default), "€" for EUR …, else the code and a space ("CHF ")."""
    code = settings.CURRENCY
    return CURRENCY_SIGNS.get(code, f"{code} ")


def money_exact(value: float | Decimal) -> str:
    """An amount to the cent, with the currency's sign: "$1,812,345.50"."""
    return f"{currency_sign()}{value:,.2f}"


def number_text(value: Any) -> str:
    """A figure as a CSM reads it in a sentence: whole numbers with thousands separators,
    others to one decimal: 72, 1,200, 12,500, 41.5, 1,234.5 (a whole float or Decimal
    prints as a whole number, 12500.0 → 12,500); "n/a" for None; anything that is not a
    number (a yes/no, a word) as it is."""
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.1f}"


def count_text(n: Any, one: str, many: str | None = None) -> str:
    """A count with its noun, in the singular for exactly one: "1 attempt", "3 attempts",
    "12,500 events"; ``many`` for a noun that does not take an s ("1 person", "2 people").
    The figure as ``number_text`` writes it."""
    return f"{number_text(n)} {one if n == 1 else (many or one + 's')}"


# An amount as words said it before the one spelling of money: "1,485.00 USD" (the code
# after the amount), where they now say "$1,485.00".
OLD_MONEY = r"(?P<amount>-?\d{1,3}(?:,\d{3})*\.\d{2}) (?P<code>[A-Z]{3})"
# an overdue amount as the health reasons and the CTAs' evidence put it: "(633,600.00 USD due)"
_OLD_DUE = re.compile(rf"\({OLD_MONEY} due\)")


def old_money_text(amount: str, code: str) -> str:
    """An amount in the old words ("1,485.00", "USD") as money is written now, with the
    sign of the currency the words name: "$1,485.00", "CHF 99.50"."""
    sign = CURRENCY_SIGNS.get(code, f"{code} ")
    return f"{sign}{Decimal(amount.replace(',', '')):,.2f}"


def old_due_reword(text: str) -> str:
    """Words with an overdue amount in the old spelling ("1 overdue invoice (633,600.00 USD
    due)") as the health reasons and the CTAs' evidence write it now ("($633,600.00 due)");
    only that form, where those builders put an amount; any other text as it is."""
    if " due)" not in text:
        return text
    return _OLD_DUE.sub(lambda m: f"({old_money_text(m['amount'], m['code'])} due)", text)

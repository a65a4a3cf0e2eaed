"""How the product writes an amount of money: one currency per installation
(``settings.CURRENCY``, an ISO 4217 code; metrics.md), written with its sign before the
amount: "$1,234.56" for USD, "€1,234.56" for EUR, and by its code for a currency without a
sign here: "CHF 1,234.56". Pages, timeline facts, health reasons, CTA evidence, emails and
chart ticks all write it so."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

CURRENCY_SIGNS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}


def currency_sign() -> str:
    """ "$" for USD (the default), "€" for EUR …, else the code and a space ("CHF ")."""
    code = settings.CURRENCY
    return CURRENCY_SIGNS.get(code, f"{code} ")


def money_exact(value: float | Decimal) -> str:
    """An amount to the cent, with the currency's sign: "$1,812,345.50"."""
    return f"{currency_sign()}{value:,.2f}"

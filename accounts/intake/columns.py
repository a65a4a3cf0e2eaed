"""The columns of each kind of file (``shared/docs/data-import.md``), as data.

A column maps to a model field through a parser. Reference columns
(``account_external_id``, ``owner_email``, ``parent_external_id``) are resolved by the
loader, not here. ``lifecycle_stage`` on accounts is our one addition to the documented
contract (optional; documented in the README).
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import (
    AccountLifecycle,
    InvoiceStatus,
    StakeholderRole,
    TicketPriority,
    TicketStatus,
)

from . import cells


@dataclass(frozen=True)
class Column:
    name: str
    parse: cells.Parser
    required: bool = False
    field: str | None = None  # model field; None for references the loader resolves
    # an empty cell keeps what is stored (the value has a default derived elsewhere)
    keep_on_empty: bool = False

    @property
    def target(self) -> str:
        return self.field if self.field is not None else self.name


def _choices(enum) -> list[str]:
    return [c.value for c in enum]


_ID = cells.text(200)

COLUMNS: dict[str, tuple[Column, ...]] = {
    "accounts": (
        Column("external_id", _ID, required=True),
        Column("name", cells.text(300), required=True),
        Column("segment", cells.text(100)),
        Column("industry", cells.text(100)),
        Column("owner_email", cells.email, field=""),
        Column("customer_since", cells.date, keep_on_empty=True),  # default: first contract
        Column("parent_external_id", _ID, field=""),
        Column("domain", cells.text(253)),
        Column("lifecycle_stage", cells.choice(_choices(AccountLifecycle))),
    ),
    "contracts": (
        Column("external_id", _ID, required=True),
        Column("account_external_id", _ID, required=True, field=""),
        Column("product", cells.text(200)),
        Column("start_date", cells.date, required=True),
        Column("end_date", cells.date),
        Column("mrr", cells.decimal(14, 2, minimum=0), required=True),
        Column("quantity", cells.integer(0)),
        Column("billing_period_months", cells.integer(1, 1200)),
        Column("auto_renew", cells.boolean),
        Column("discount", cells.fraction),
    ),
    "stakeholders": (
        Column("external_id", _ID, required=True),
        Column("account_external_id", _ID, required=True, field=""),
        Column("name", cells.text(200)),
        Column("email", cells.email),
        Column("title", cells.text(200)),
        Column("role", cells.choice(_choices(StakeholderRole))),
        Column("is_primary", cells.boolean),
    ),
    "tickets": (
        Column("external_id", _ID, required=True),
        Column("account_external_id", _ID, required=True, field=""),
        Column("subject", cells.text(500)),
        Column("priority", cells.choice(_choices(TicketPriority))),
        Column("status", cells.choice(_choices(TicketStatus))),
        Column("opened_at", cells.timestamp, required=True),
        Column("first_response_at", cells.timestamp),
        Column("resolved_at", cells.timestamp),
        Column("escalated", cells.boolean),
        Column("agent_contacts", cells.integer(0)),
        Column("csat", cells.integer(1, 5)),
    ),
    "invoices": (
        Column("external_id", _ID, required=True),
        Column("account_external_id", _ID, required=True, field=""),
        Column("issued_on", cells.date, required=True),
        Column("due_on", cells.date),
        Column("amount", cells.decimal(14, 2, minimum=0), required=True),
        Column("paid_on", cells.date),
        Column("status", cells.choice(_choices(InvoiceStatus))),
        Column("failed_attempts", cells.integer(0)),
    ),
    "events": (
        Column("account_external_id", _ID, required=True, field=""),
        Column("user_id", _ID),
        Column("event", cells.text(200), required=True),
        Column("occurred_at", cells.timestamp, required=True),
        Column("value", cells.number),
    ),
}

# Values a model field takes when a new row leaves the column empty or out. Fields not
# listed here are nullable (None) or blank text ("").
DEFAULTS: dict[str, dict[str, object]] = {
    "accounts": {"lifecycle_stage": AccountLifecycle.ONBOARDING},
    "stakeholders": {"is_primary": False},
    "tickets": {"priority": TicketPriority.NORMAL, "status": TicketStatus.OPEN, "escalated": False},
    "invoices": {"status": InvoiceStatus.OPEN, "failed_attempts": 0},
}

# Pairs (earlier, later) that must be ordered: "end before start" is an error in the later
# column.
ORDER_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "contracts": (("start_date", "end_date"),),
    "tickets": (("opened_at", "first_response_at"), ("opened_at", "resolved_at")),
    "invoices": (("issued_on", "due_on"), ("issued_on", "paid_on")),
}

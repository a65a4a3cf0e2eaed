"""The starter playbooks a new installation begins with (editable afterwards): loaded once
by the data migration ``0002_starter_playbooks`` through ``services.starter_playbooks_load``.
No actions (email, webhook, Slack) are switched on: admins choose where messages go."""

from __future__ import annotations

from typing import Any

STARTERS: dict[str, dict[str, Any]] = {
    "red-turnaround": {
        "name": "Red account turnaround",
        "description": "Health entered red: find out why and agree a recovery plan.",
        "trigger": "health_entered",
        "trigger_params": {"band": "red", "within_days": 2},
        "cta_title": "Turn around a red account",
        "cta_type": "risk",
        "priority": "high",
        "steps": [
            {"title": "Read why health dropped (health reasons, tickets, usage)", "due_days": 0},
            {"title": "Call the champion or decision maker", "due_days": 1},
            {"title": "Agree a written recovery plan", "due_days": 5},
            {"title": "Check progress against the plan", "due_days": 21},
        ],
        "owner_rule": "account_csm",
        "success": "health_band_at_least",
        "success_params": {"band": "yellow"},
        "success_days": 60,
        "cooldown_days": 30,
    },
    "expansion": {
        "name": "Expansion: healthy account near its seat limit",
        "description": "Green health and at least 90 % of licensed seats active in 30 days.",
        "trigger": "seat_utilisation",
        "trigger_params": {"at_least": 90, "healthy_only": True},
        "cta_title": "Propose more seats",
        "cta_type": "opportunity",
        "priority": "low",
        "steps": [
            {"title": "Confirm who is using the product and who is waiting", "due_days": 3},
            {"title": "Send an upgrade proposal", "due_days": 10},
        ],
        "owner_rule": "account_csm",
        "success": "arr_expanded",
        "success_days": 90,
        "cooldown_days": 90,
    },
    "onboarding": {
        "name": "Onboarding",
        "description": "A new customer's first 30 days: kickoff to first value.",
        "trigger": "new_customer",
        "trigger_params": {"days": 30},
        "cta_title": "Onboard the new customer",
        "cta_type": "lifecycle",
        "priority": "medium",
        "steps": [
            {"title": "Kickoff call: goals and success criteria", "due_days": 2},
            {"title": "Set up integrations and invite the team", "due_days": 7},
            {"title": "Training session", "due_days": 14},
            {"title": "First value review", "due_days": 30},
        ],
        "owner_rule": "account_csm",
        "success": "first_value",
        "success_days": 45,
        "cooldown_days": 365,
    },
    "renewal-prep": {
        "name": "Renewal preparation (90 days out)",
        "description": "The contract ends within 90 days and no renewal is signed yet.",
        "trigger": "renewal_within",
        "trigger_params": {"days": 90},
        "cta_title": "Prepare the renewal",
        "cta_type": "lifecycle",
        "priority": "medium",
        "steps": [
            {"title": "Review health, usage and open issues", "due_days": 7},
            {"title": "Renewal call with the decision maker", "due_days": 30},
            {"title": "Send the renewal proposal", "due_days": 45},
        ],
        "owner_rule": "account_csm",
        "success": "renewed",
        "success_days": 120,
        "cooldown_days": 180,
    },
    "detractor-follow-up": {
        "name": "Detractor follow-up",
        "description": "An NPS detractor, a low CSAT or a high-effort CES answer.",
        "trigger": "survey_unhappy",
        "trigger_params": {"kinds": ["nps", "csat", "ces"], "within_days": 2},
        "cta_title": "Follow up on an unhappy answer",
        "cta_type": "risk",
        "priority": "high",
        "steps": [
            {"title": "Call the respondent", "due_days": 0},
            {"title": "Log what you learned and the next step", "due_days": 2},
        ],
        "owner_rule": "account_csm",
        "success": "touched",
        "success_days": 7,
        "cooldown_days": 14,
    },
    "failed-payment": {
        "name": "Failed payment",
        "description": "A failed payment attempt on an invoice not paid since, or an overdue "
        "invoice (the CTA's title names which).",
        "trigger": "payment_trouble",
        "trigger_params": {"failed_payments": 1, "overdue": True},
        "cta_title": "Sort out a payment problem",
        "cta_type": "risk",
        "priority": "high",
        "steps": [
            {"title": "Contact the billing contact", "due_days": 0},
            {"title": "Confirm the payment method is updated", "due_days": 3},
        ],
        "owner_rule": "account_csm",
        "success": "payments_clear",
        "success_days": 30,
        "cooldown_days": 14,
    },
}

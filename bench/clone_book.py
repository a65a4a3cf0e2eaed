"""Multiply a seeded book inside PostgreSQL: N copies of every account and of its contracts,
stakeholders, tickets, invoices, usage events and rollups, with new ids, external ids and
dedup keys. Used to build the 100,000-account pipeline book from a 10,000-account
``seed_demo`` book in minutes instead of the seed's hour on a busy machine:

    createdb -h 127.0.0.1 -U postgres -T cs_pipeline_small cs_pipeline_bench
    .venv/bin/python bench/clone_book.py --copies 10 --accounts 10000 | \\
        psql -h 127.0.0.1 -U postgres cs_pipeline_bench

Prints the SQL (one transaction); the accounts of the source book must have the ids
1..``--accounts``. Timeline entries, activities and metrics rows are not copied (the
pipeline does not read the timeline; the seed writes no activities).

Usage events keep their ``occurred_at``: on a book migrated to monthly partitions
(accounts.0006) the copies land in the partitions their originals are in, so no partition is
created here, and a month without one would go to the DEFAULT partition, not fail. After a
clone, ``manage.py run_pipeline`` (its ``usage_events`` step) moves any such rows into
partitions of their own. Presences are copied with the rollups (with a retention set, known
users come from them)."""

from __future__ import annotations

import argparse

TABLES = {
    "accounts_contract": "created_at,updated_at,external_id,product,start_date,end_date,mrr,"
    "quantity,billing_period_months,auto_renew,discount,account_id",
    "accounts_stakeholder": "created_at,updated_at,external_id,name,email,title,role,"
    "is_primary,account_id",
    "accounts_ticket": "created_at,updated_at,external_id,subject,priority,status,opened_at,"
    "first_response_at,resolved_at,escalated,agent_contacts,csat,account_id",
    "accounts_invoice": "created_at,updated_at,external_id,issued_on,due_on,amount,paid_on,"
    "status,failed_attempts,account_id",
    "accounts_usagedaily": "day,events,active_users,value_sum,account_id",
    "accounts_usagefeaturedaily": "day,event,events,users,account_id",
    # the distinct users of the rollups and of the usage KPIs (metrics.UsageUser follows them)
    "accounts_usagepresence": "day,user_id,event,account_id",
    "accounts_usageevent": "user_id,event,occurred_at,value,dedup_key,account_id",
}
ACCOUNT = (
    "id,created_at,updated_at,external_id,name,segment,industry,domain,lifecycle_stage,"
    "customer_since,owner_id,parent_id,customer_since_derived"
)


def select(columns: str, copy: int, size: int) -> str:
    shifted = {
        "id": f"id + {copy * size}",
        "account_id": f"account_id + {copy * size}",
        "parent_id": f"parent_id + {copy * size}",
        "external_id": f"external_id || '-c{copy}'",
        "name": f"name || ' {copy}'",
        "dedup_key": f"md5(dedup_key::text || '{copy}')::uuid",
    }
    return ", ".join(shifted.get(c, c) for c in columns.split(","))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=10, help="accounts × this many in all")
    parser.add_argument("--accounts", type=int, default=10000, help="accounts in the source")
    args = parser.parse_args()
    size, copies = args.accounts, range(1, args.copies)
    print("\\timing on\nSET synchronous_commit = off;\nBEGIN;")
    for k in copies:
        print(
            f"INSERT INTO accounts_account ({ACCOUNT}) SELECT {select(ACCOUNT, k, size)} "
            f"FROM accounts_account WHERE id <= {size};"
        )
    for table, columns in TABLES.items():
        for k in copies:
            print(
                f"INSERT INTO {table} ({columns}) SELECT {select(columns, k, size)} "
                f"FROM {table} WHERE account_id <= {size};"
            )
    print("COMMIT;")
    print(
        "SELECT setval(pg_get_serial_sequence('accounts_account', 'id'), "
        "(SELECT max(id) FROM accounts_account));"
    )
    print("VACUUM ANALYZE;")


if __name__ == "__main__":
    main()

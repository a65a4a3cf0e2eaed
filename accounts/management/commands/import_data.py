"""python manage.py import_data DIR | FILE --kind K [--dry-run] [--ignore-unknown]"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from accounts import intake, services
from accounts.models import ImportRecord, User


class Command(BaseCommand):
    help = (
        "Import customer data from CSV files (.csv or .csv.gz): a directory (every known file, "
        "in dependency order) or one file. All-or-nothing: any bad row rejects the import."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="a directory of <kind>.csv files, or one file")
        parser.add_argument("--kind", choices=intake.kinds(), help="kind of a single file")
        parser.add_argument("--dry-run", action="store_true", help="validate only, write nothing")
        parser.add_argument(
            "--ignore-unknown", action="store_true", help="ignore columns the kind does not have"
        )
        parser.add_argument("--user", help="email of the user to record as importer")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print the result as JSON"
        )

    def handle(
        self,
        *args,
        path: str,
        kind: str | None,
        dry_run: bool,
        ignore_unknown: bool,
        user: str | None,
        as_json: bool,
        **options,
    ) -> None:
        target = Path(path)
        try:
            if target.is_dir():
                if kind:
                    raise CommandError("--kind applies to a single file, not a directory")
                sources = intake.sources_from_dir(target)
                for name in intake.unplaced_files(target):
                    self.stderr.write(f"Skipping {name}: its name does not start with a kind")
            else:
                sources = [intake.source_from_path(target, kind=kind)]
        except intake.IntakeError as exc:
            raise CommandError(str(exc)) from None
        importer = None
        if user:
            importer = User.objects.filter(email__iexact=user).first()
            if importer is None:
                raise CommandError(f"no user with email {user}")
        record = ImportRecord.objects.create(
            origin=ImportRecord.Origin.CLI,
            user=importer,
            kind=sources[0].kind if len(sources) == 1 else "dir",
            filename=str(target),
            dry_run=dry_run,
            ignore_unknown=ignore_unknown,
        )
        if not as_json:
            names = ", ".join(s.name for s in sources)
            self.stdout.write(f"Importing {names}{' (dry run)' if dry_run else ''}")
        total = sum(s.size for s in sources)
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            disable=True if as_json else None,
            dynamic_ncols=True,
            file=self.stderr._out,
        ) as bar:

            def progress(rows: int, done: int, size: int) -> None:
                bar.update(done - bar.n)
                bar.set_postfix(rows=f"{rows:,}", refresh=False)

            record = services.import_record_run(record=record, sources=sources, progress=progress)
        if as_json:
            self.stdout.write(_json_result(record))
        else:
            self._print(record)
        if record.status == ImportRecord.Status.REJECTED:
            bad = f"{record.rejected:,} bad row(s)" if record.rejected else "see the errors above"
            raise CommandError(f"import rejected: {bad}; nothing was written")

    def _print(self, record: ImportRecord) -> None:
        for part in record.per_kind.values():
            self.stdout.write(
                f"  {part['source']}: {part['rows']:,} rows, {part['created']:,} created, "
                f"{part['updated']:,} updated, {part['unchanged']:,} unchanged, "
                f"{part['rejected']:,} rejected"
            )
        for error in record.errors:
            where = f"row {error['row']}" + (
                f", column {error['column']}" if error["column"] else ""
            )
            self.stderr.write(f"{error['source']}: {where}: {error['message']}")
        if record.rejected > len(record.errors):
            self.stderr.write(
                f"… {record.rejected:,} rejected rows in all (first {len(record.errors)} shown)"
            )
        if record.status == ImportRecord.Status.SUCCEEDED:
            self.stdout.write(self.style.SUCCESS(f"Imported. Record {record.uuid}"))
        elif record.status == ImportRecord.Status.VALIDATED:
            self.stdout.write(self.style.SUCCESS("Valid (dry run): nothing was written."))


def _json_result(record: ImportRecord) -> str:
    return json.dumps(
        {
            "import": str(record.uuid),
            "status": record.status,
            "rows": record.rows,
            "created": record.created,
            "updated": record.updated,
            "unchanged": record.unchanged,
            "rejected": record.rejected,
            "per_kind": record.per_kind,
            "errors": record.errors,
        },
        indent=2,
    )

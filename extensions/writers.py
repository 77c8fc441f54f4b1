"""Writing an import: the new and changed rows go in while the file is being checked.

The planner hands every row that creates or changes an extension to a writer as it checks it,
so the file is read once and never held as a list of rows. Nothing reaches the directory unless
the whole file passed: the caller opens the writer inside a savepoint and only calls `apply()`
for a file without errors.

* PostgreSQL: rows stream into a temporary staging table with COPY, then one
  INSERT … SELECT … ON CONFLICT (trunk, number) DO UPDATE applies them (100,000 rows in a
  couple of seconds, where the ORM's bulk_create needs twenty).
* Anything else (the embedded SQLite default): batches of bulk_create(update_conflicts=True)
  straight into the table; a file with errors is undone by rolling the savepoint back.
"""

from __future__ import annotations

import json

from django.db import connection
from django.utils import timezone

from trunks.models import SipTrunk

from .models import Extension
from .rules import ExtensionValues

WRITE_BATCH = 2000
_STAGE = "extension_import_stage"
_UPDATED = ("display_name", "owner", "department", "aliases")


class DirectoryWriter:
    """stage() each row while checking, then apply(); leaving the `with` block on an error
    discards the staged rows (the caller's savepoint rolls back anything already written)."""

    def __enter__(self) -> DirectoryWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None:
            self.discard()

    def stage(self, values: ExtensionValues) -> None:
        raise NotImplementedError

    def apply(self, *, deleted_ids: list[int]) -> None:
        raise NotImplementedError

    def discard(self) -> None:
        """Stops staging; the caller's savepoint rollback undoes anything written."""

    @staticmethod
    def for_trunk(trunk: SipTrunk, *, portable: bool = False) -> DirectoryWriter:
        if connection.vendor == "postgresql" and not portable:
            return PostgresStagingWriter(trunk)
        return BatchUpsertWriter(trunk)


def _delete(trunk: SipTrunk, ids: list[int]) -> None:
    for start in range(0, len(ids), WRITE_BATCH):
        Extension.objects.filter(trunk=trunk, pk__in=ids[start : start + WRITE_BATCH]).delete()


class PostgresStagingWriter(DirectoryWriter):
    def __init__(self, trunk: SipTrunk) -> None:
        self.trunk = trunk
        self._cursor = connection.cursor()
        self._cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{_STAGE}")
        self._cursor.execute(
            f"CREATE TEMPORARY TABLE {_STAGE} (number text, display_name text, owner text, "
            "department text, aliases jsonb) ON COMMIT DROP"
        )
        # psycopg 3's COPY: rows are buffered and flushed by the driver, not kept here.
        self._copy_context = self._cursor.cursor.copy(
            f"COPY {_STAGE} (number, display_name, owner, department, aliases) FROM STDIN"
        )
        self._copy = self._copy_context.__enter__()

    def stage(self, values: ExtensionValues) -> None:
        self._copy.write_row(
            (values.number, values.display_name, values.owner, values.department, json.dumps(values.aliases))
        )

    def _end_copy(self, error: BaseException | None = None) -> None:
        if self._copy_context is not None:
            context, self._copy_context = self._copy_context, None
            context.__exit__(type(error) if error else None, error, None)

    def apply(self, *, deleted_ids: list[int]) -> None:
        self._end_copy()
        table = Extension._meta.db_table
        columns = ", ".join(f"{name} = EXCLUDED.{name}" for name in (*_UPDATED, "updated_at"))
        now = timezone.now()
        self._cursor.execute(
            f"INSERT INTO {table} (tenant_id, trunk_id, number, display_name, owner, department, aliases, "
            f"created_at, updated_at) "
            f"SELECT %s, %s, number, display_name, owner, department, aliases, %s, %s FROM {_STAGE} "
            f"ON CONFLICT (trunk_id, number) DO UPDATE SET {columns}",
            [self.trunk.tenant_id, self.trunk.pk, now, now],
        )
        self._cursor.execute(f"DROP TABLE {_STAGE}")
        self._cursor.close()
        _delete(self.trunk, deleted_ids)

    def discard(self) -> None:
        # Ending COPY with an error makes PostgreSQL abort it; the savepoint rollback does the rest.
        # Safe to call after apply() failed half-way: the COPY is then already over.
        self._end_copy(RuntimeError("import discarded"))
        self._cursor.close()


class BatchUpsertWriter(DirectoryWriter):
    def __init__(self, trunk: SipTrunk, *, batch_size: int = WRITE_BATCH) -> None:
        self.trunk = trunk
        self.batch_size = batch_size
        self._batch: list[Extension] = []

    def stage(self, values: ExtensionValues) -> None:
        self._batch.append(
            Extension(
                tenant_id=self.trunk.tenant_id,
                trunk_id=self.trunk.pk,
                number=values.number,
                display_name=values.display_name,
                owner=values.owner,
                department=values.department,
                aliases=list(values.aliases),
            )
        )
        if len(self._batch) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            Extension.objects.bulk_create(
                self._batch,
                update_conflicts=True,
                unique_fields=["trunk", "number"],
                update_fields=[*_UPDATED, "updated_at"],
            )
            self._batch = []

    def apply(self, *, deleted_ids: list[int]) -> None:
        self._flush()
        _delete(self.trunk, deleted_ids)

    def discard(self) -> None:
        self._batch = []

"""Runs inside a child process on the fault tests' private PostgreSQL/Redis (settings from the
environment): prepares a big directory import and triggers its commit, as the portal would.

    python -m telephony.tests.hardening.import_child prepare ROWS   → prints {"job": id, "trunk": id}
    python -m telephony.tests.hardening.import_child commit JOB
"""

from __future__ import annotations

import json
import sys

import django


def directory_csv(rows: int) -> bytes:
    lines = ["extension,display_name,owner,department,aliases"]
    lines += [f"{100000 + i},Person {i:05d},Owner {i:05d},Dept {i % 40},alias{i:05d}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def main(argv: list[str]) -> None:
    django.setup()
    from extensions.models import DirectoryImport
    from extensions.services import import_job_commit, import_job_create
    from smartalex.tenancy.services import workspace_create
    from trunks.services import TrunkSettings, trunk_create

    command = argv[0]
    if command == "prepare":
        rows = int(argv[1])
        tenant, _ = workspace_create(
            name="Import fault", owner_email="imp@fault.test", owner_password="x" * 12
        )
        trunk, _ = trunk_create(
            tenant=tenant, values=TrunkSettings(name="Imports", pbx_domain="pbx.imp.test")
        )
        job = import_job_create(trunk=trunk, user=None, data=directory_csv(rows), filename="big.csv")
        print(json.dumps({"job": job.pk, "trunk": trunk.pk, "background": job.background}))
    elif command == "commit":
        job = import_job_commit(job=DirectoryImport.objects.get(pk=int(argv[1])))
        print(json.dumps({"status": job.status}))


if __name__ == "__main__":
    main(sys.argv[1:])

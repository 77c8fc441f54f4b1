"""Creates (or refreshes) a benchmark workspace with N credential trunks: USER_PREFIXnnnn / PASS_PREFIXnnnn.

The same users the Kamailio anchor loads, so both registrars are driven by one sipp scenario.
    python bench/make_trunks.py --count 1000 --user-prefix user --pass-prefix benchpassword
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smartalex.settings.dev")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402

from smartalex.tenancy.models import Tenant  # noqa: E402
from telephony.sip.digest import ha1  # noqa: E402
from trunks.config_version import config_changed  # noqa: E402
from trunks.models import SipTrunk, TrunkStatus  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--user-prefix", default="user")
    parser.add_argument("--pass-prefix", default="benchpassword")
    args = parser.parse_args()
    realm = settings.SIP_DOMAIN
    with transaction.atomic():
        tenant, _ = Tenant.objects.get_or_create(name="Benchmark")
        SipTrunk.objects.filter(tenant=tenant).delete()
        trunks = []
        for i in range(1, args.count + 1):
            user, password = f"{args.user_prefix}{i:04d}", f"{args.pass_prefix}{i:04d}"
            trunks.append(
                SipTrunk(
                    tenant=tenant,
                    name=f"bench {user}",
                    pbx_domain="pbx.bench.test",
                    auth_username=user,
                    ha1_md5=ha1("MD5", user, realm, password),
                    ha1_sha256=ha1("SHA-256", user, realm, password),
                )
            )
        created = SipTrunk.objects.bulk_create(trunks, batch_size=1000)
        TrunkStatus.objects.bulk_create(
            [TrunkStatus(trunk=t, tenant=tenant) for t in created], batch_size=1000
        )
        config_changed()
    print(f"{len(created)} trunks in workspace {tenant.name}")


if __name__ == "__main__":
    main()

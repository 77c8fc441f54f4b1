"""Trunks of the two fixed workspaces and the guide's example file."""

from __future__ import annotations

import pytest

from extensions.rules import ExtensionValues
from extensions.services import extension_create
from trunks.models import SipTrunk
from trunks.services import TrunkSettings, trunk_create

# The example from the generic PBX guide, step 5, byte for byte.
GUIDE_CSV = (
    "extension,display_name,owner,department,aliases\n"
    "101,Sales,Sarah Jones,Sales,sarah|sales team\n"
    "102,Support,John Smith,Support,support|tech\n"
)


def make_trunk(tenant, name: str = "Main office", domain: str = "pbx.acme.test") -> SipTrunk:
    trunk, _ = trunk_create(tenant=tenant, values=TrunkSettings(name=name, pbx_domain=domain))
    return trunk


@pytest.fixture
def trunk(tenant) -> SipTrunk:
    return make_trunk(tenant)


@pytest.fixture
def other_trunk(other_tenant) -> SipTrunk:
    return make_trunk(other_tenant, name="Globex main", domain="pbx.globex.test")


@pytest.fixture
def guide_extensions(trunk):
    """The guide's two extensions, already in the directory."""
    return [
        extension_create(
            trunk=trunk,
            values=ExtensionValues("101", "Sales", "Sarah Jones", "Sales", ("sarah", "sales team")),
        ),
        extension_create(
            trunk=trunk,
            values=ExtensionValues("102", "Support", "John Smith", "Support", ("support", "tech")),
        ),
    ]


@pytest.fixture
def foreign_extension(other_trunk):
    return extension_create(
        trunk=other_trunk, values=ExtensionValues("201", "Globex desk", "Gina Globex", "Front", ("gina",))
    )

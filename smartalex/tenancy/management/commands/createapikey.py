from django.core.management.base import BaseCommand, CommandError

from smartalex.tenancy.models import Tenant
from smartalex.tenancy.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a workspace and print it (shown once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workspace", required=True, help="The workspace's name.")
        parser.add_argument("--name", default="cli")

    def handle(self, *args, workspace: str, name: str, **options) -> None:
        tenant = Tenant.objects.filter(name__iexact=workspace).first()
        if tenant is None:
            raise CommandError(f"No workspace named “{workspace}”.")
        _, raw = api_key_create(tenant=tenant, name=name)
        self.stdout.write(raw)

from django.core.management.base import BaseCommand, CommandError

from smartalex.errors import ApplicationError
from smartalex.tenancy.services import workspace_create


class Command(BaseCommand):
    help = "Create a workspace and its Owner."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--password", required=True)

    def handle(self, *args, name: str, owner_email: str, password: str, **options) -> None:
        try:
            tenant, user = workspace_create(name=name, owner_email=owner_email, owner_password=password)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Created workspace “{tenant.name}” (id {tenant.pk}) with Owner {user.email}.")

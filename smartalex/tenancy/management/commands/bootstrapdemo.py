from django.core.management.base import BaseCommand

from smartalex.tenancy.models import Tenant, User
from smartalex.tenancy.services import workspace_create

DEMO_WORKSPACE = "Demo Workspace"
DEMO_EMAIL = "owner@demo.example"
DEMO_PASSWORD = "demo-password-123"
SUPPORT_EMAIL = "support@demo.example"


class Command(BaseCommand):
    help = "Create the demo workspace, its Owner and a support user for `make run` (idempotent)."

    def handle(self, *args, **options) -> None:
        if not Tenant.objects.filter(name=DEMO_WORKSPACE).exists():
            workspace_create(name=DEMO_WORKSPACE, owner_email=DEMO_EMAIL, owner_password=DEMO_PASSWORD)
        if not User.objects.filter(email=SUPPORT_EMAIL).exists():
            User.objects.create_user(email=SUPPORT_EMAIL, password=DEMO_PASSWORD, is_support=True)
        self.stdout.write(
            "\n  Portal:  http://127.0.0.1:8000\n"
            f"  Owner:   {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
            f"  Support: {SUPPORT_EMAIL} / {DEMO_PASSWORD}\n"
        )

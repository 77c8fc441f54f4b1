from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "smartalex.tenancy"
    label = "tenancy"
    verbose_name = "Workspaces"

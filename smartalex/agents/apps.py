from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "smartalex.agents"
    label = "agents"
    verbose_name = "Agent Studio"

from django.urls import path

from . import metrics, views

app_name = "support"
urlpatterns = [
    # Support staff, across workspaces.
    path("support/", views.console, name="console"),
    path("support/trunks/<int:trunk_id>/", views.support_trunk_health, name="support-trunk"),
    path("support/trunks/<int:trunk_id>/bundle/", views.support_bundle, name="support-bundle"),
    path("support/trunks/<int:trunk_id>/probe/", views.support_trunk_probe, name="support-trunk-probe"),
    path("support/traces/<int:trace_id>/", views.support_trace, name="support-trace"),
    path("support/traces/<int:trace_id>/pcap/", views.support_trace_pcap, name="support-trace-pcap"),
    # The workspace's own trunks.
    path("trunks/<int:trunk_id>/health/", views.trunk_health, name="trunk-health"),
    path("trunks/<int:trunk_id>/health/probe/", views.trunk_probe, name="trunk-probe"),
    path("trunks/<int:trunk_id>/health/bundle/", views.trunk_bundle, name="trunk-bundle"),
    path("trunks/<int:trunk_id>/traces/<int:trace_id>/", views.trunk_trace, name="trunk-trace"),
    path(
        "trunks/<int:trunk_id>/traces/<int:trace_id>/pcap/", views.trunk_trace_pcap, name="trunk-trace-pcap"
    ),
    path("settings/support-access/", views.support_access, name="access-log"),
    path("metrics", metrics.metrics_view, name="metrics"),
]

"""`{% trunk_alert_banner %}`: the workspace's open trunk alerts, above every portal page."""

from __future__ import annotations

from django import template

from support.selectors import open_alerts

register = template.Library()


@register.inclusion_tag("support/_alert_banner.html", takes_context=True)
def trunk_alert_banner(context: template.Context) -> dict:
    request = context.get("request")
    tenant = getattr(request, "tenant", None)
    return {"alerts": list(open_alerts(tenant=tenant)) if tenant is not None else []}

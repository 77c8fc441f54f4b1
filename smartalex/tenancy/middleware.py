"""Resolves the current workspace of a logged-in user from the session."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .models import Membership

SESSION_KEY = "tenant_id"


class TenantMiddleware:
    """Sets `request.tenant` and `request.membership` (None when logged out or in no workspace).

    The workspace is never taken from the request body or URL: only from the session, and only
    if the user is a member of it (DESIGN.md convention 2). API requests authenticated by key
    get their tenant from the key, in the DRF authentication class.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.tenant = None
        request.membership = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            memberships = Membership.objects.filter(user=user).select_related("tenant")
            wanted = request.session.get(SESSION_KEY)
            membership = memberships.filter(tenant_id=wanted).first() if wanted else None
            membership = membership or memberships.order_by("tenant__name").first()
            if membership is not None:
                request.session[SESSION_KEY] = membership.tenant_id
                request.tenant = membership.tenant
                request.membership = membership
        return self.get_response(request)

"""The API's page style (`REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"]`). In a module of its own:
DRF reads the setting while `rest_framework.generics` is being imported, so the class cannot live
beside the views."""

from rest_framework.pagination import LimitOffsetPagination


class Pages(LimitOffsetPagination):
    """`?limit=&offset=` pages of at most `max_limit` rows. DRF's default has no ceiling: a limit
    past PostgreSQL's bigint (schemathesis sent one) ended as a 500, not a page."""

    max_limit = 500  # a larger limit is cut to this one

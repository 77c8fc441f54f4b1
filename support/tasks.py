"""Periodic and on-demand work for support (beat schedule in settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task


@shared_task
def traces_prune() -> int:
    from .traces import traces_prune as prune

    return prune()


@shared_task
def alerts_sweep() -> dict[str, int]:
    from .services import alerts_sweep as sweep

    return sweep()


@shared_task
def probe_options(trunk_id: int) -> dict | None:
    from trunks.models import SipTrunk

    from .services import trunk_probe_options

    trunk = SipTrunk.objects.filter(pk=trunk_id).first()
    return trunk_probe_options(trunk=trunk).detail if trunk else None


@shared_task
def probe_test_call(trunk_id: int, extension: str) -> dict | None:
    from trunks.models import SipTrunk

    from .services import trunk_probe_call

    trunk = SipTrunk.objects.filter(pk=trunk_id).first()
    return trunk_probe_call(trunk=trunk, extension=extension).detail if trunk else None

from trunks.tests.browser.peers import celery_queue, engine, new_page, pbx, worker

__all__ = ["celery_queue", "engine", "new_page", "pbx", "worker"]

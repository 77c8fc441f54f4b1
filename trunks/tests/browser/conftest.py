from .peers import engine, new_page, pbx, worker

__all__ = ["engine", "new_page", "pbx", "worker"]

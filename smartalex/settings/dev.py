"""`make run` and local development: debug pages, engine bound to loopback unless told otherwise."""

import os

from .base import *  # noqa: F403

DEBUG = os.environ.get("DEBUG", "1") == "1"
SIP_HOST = os.environ.get("SIP_HOST", "127.0.0.1")

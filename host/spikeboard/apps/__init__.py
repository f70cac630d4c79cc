"""Applications: data sets that ship inside packages, their features, their
spike encoders and their float baselines. Every built-in application is a thin
definition on the same path as a lab's own data file (`--data FILE`)."""
from __future__ import annotations

from .base import App, Prepared, get_app, list_apps, prepare

__all__ = ["App", "Prepared", "get_app", "list_apps", "prepare"]

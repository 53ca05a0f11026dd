"""Stroma: the Django project and what cuts across the apps."""

from lims.celery import app as celery_app

__all__ = ["celery_app"]

"""System checks that keep the audit promise true as the project grows."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.checks import Error, register

from lims.audit import AUDITED_APPS


@register()
def every_model_has_history(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors = []
    for model in apps.get_models():
        meta = model._meta
        if meta.app_label not in AUDITED_APPS or (meta.model_name or "").startswith("historical"):
            continue
        if not hasattr(model, "history"):
            errors.append(Error(f"{meta.label} has no audit history", id="stroma.E001"))
    return errors

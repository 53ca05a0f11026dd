from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class LimsConfig(AppConfig):
    name = "lims"
    verbose_name = "Stroma"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.models import update_last_login
        from django.contrib.auth.signals import user_logged_in
        from simple_history.signals import pre_create_historical_record

        from lims import checks  # noqa: F401  (registers system checks)

        # A login is recorded by django-axes' access log; it is not a change to the user record,
        # and would otherwise write a history row attributed to nobody.
        user_logged_in.disconnect(update_last_login, dispatch_uid="update_last_login")
        pre_create_historical_record.connect(_attribute_to_system, dispatch_uid="stroma_history_user")
        post_migrate.connect(_after_migrate, dispatch_uid="stroma_after_migrate")


def _attribute_to_system(sender: Any, history_instance: Any, **kwargs: Any) -> None:
    """A history row never names nobody: unattributed writes belong to the system account."""
    if history_instance.history_user_id is None:
        from lims.audit import system_user

        history_instance.history_user = system_user()
        if not history_instance.history_change_reason:
            history_instance.history_change_reason = "system: change recorded without an acting user"


def _after_migrate(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    if sender.name != "lims":
        return
    from django.apps import apps
    from django.db import connections

    from lims.audit import install_history_guard
    from lims.roles import sync_roles

    sync_roles(apps)
    install_history_guard(connections[using])

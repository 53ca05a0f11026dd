"""Django's model backend, reading a person's permissions in one statement instead of two.

Every page checks permissions (the view's decorator, the header's links), so the first check of a
request loads them all. Django's ``ModelBackend`` does that with one query for the person's own
permissions and one for their roles' (groups'); here the two are one ``UNION``. Nothing is cached
beyond the request, as in Django: a role taken away applies from the person's next request.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission


class RoleBackend(ModelBackend):
    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:
                granted = Permission.objects.all()
            else:
                granted = (
                    Permission.objects.filter(user=user_obj)
                    .order_by()
                    .union(Permission.objects.filter(group__user=user_obj).order_by(), all=True)
                )
            # ModelBackend's names, app label and codename; the union keeps only the two columns.
            rows = granted.values_list("content_type__app_label", "codename").order_by()
            user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in rows}
        return user_obj._perm_cache

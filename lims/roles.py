"""Roles: groups and their permissions, in one mapping.

Data migrations call :func:`sync_roles` so that the groups in the database always match this
file; docs/roles.md is the same matrix in words, and a test keeps the two honest.
"""

from __future__ import annotations

from typing import Any

OPERATOR = "Cleanroom operator"
QA = "QA officer"
CLINICIAN = "Clinician"
LAB_MANAGER = "Lab manager"

ROLES = (OPERATOR, QA, CLINICIAN, LAB_MANAGER)

# Permissions by role, as "app_label.codename". Later capabilities add their own lines here.
_VIEW_SAMPLES = {
    "samples.view_study",
    "samples.view_protocolversion",
    "samples.view_subject",
    "samples.view_aspirate",
    "samples.view_followupsample",
    "samples.view_assayresult",
    "samples.view_diseaseactivity",
}
_VIEW_MANUFACTURING = {
    "manufacturing.view_finalproduct",
    "manufacturing.view_dosecalculation",
    "manufacturing.view_infusion",
    "manufacturing.view_specification",
    "manufacturing.view_qcresult",
    "manufacturing.view_qcsample",
    "manufacturing.view_processingsession",
    "manufacturing.view_emreading",
    "manufacturing.view_batch",
    "manufacturing.view_flask",
    "manufacturing.view_cultureevent",
    "manufacturing.view_reagentlot",
    "manufacturing.view_harvest",
}
# Reminders (docs/reminders.md): everyone has an inbox; whose reminder it is decides who may act on it.
_REMINDERS = {"lims.view_reminder", "lims.acknowledge_reminder"}
_EVERYONE = {"lims.view_audit_trail", "lims.view_label", *_VIEW_SAMPLES, *_VIEW_MANUFACTURING, *_REMINDERS}

ROLE_PERMISSIONS: dict[str, set[str]] = {
    OPERATOR: _EVERYONE
    | {
        "lims.add_custodyevent",
        "samples.receive_aspirate",
        "manufacturing.add_batch",
        "manufacturing.add_cultureevent",
        "manufacturing.add_reagentlot",
        "manufacturing.enter_qcresult",
        "manufacturing.add_finalproduct",
        "manufacturing.issue_product",
    },
    QA: _EVERYONE
    | {
        "lims.view_scanattempt",
        "lims.view_signaturefailure",
        "lims.view_deviation",
        "lims.sign_witnessed",
        "manufacturing.release_reagentlot",
        "manufacturing.recall_reagentlot",
        "manufacturing.approve_specification",
        "manufacturing.enter_qcresult",
        "manufacturing.decide_release",
        "manufacturing.close_deviation",
        "manufacturing.view_deviationclosure",
        "manufacturing.view_bedsidecheck",
    },
    CLINICIAN: _EVERYONE
    | {
        "lims.add_custodyevent",
        "lims.sign_witnessed",
        "samples.add_subject",
        "samples.confirm_eligibility",
        "samples.withdraw_subject",
        "samples.add_aspirate",
        "samples.add_followupsample",
        "samples.add_assayresult",
        "samples.add_diseaseactivity",
        "manufacturing.add_dosecalculation",
        "manufacturing.verify_dose",
        "manufacturing.receive_product",
        "manufacturing.add_infusion",
    },
    LAB_MANAGER: _EVERYONE
    | {
        "lims.add_custodyevent",
        "lims.view_scanattempt",
        "lims.view_signaturefailure",
        "lims.view_deviation",
        "lims.sign_witnessed",
        "samples.add_study",
        "samples.add_protocolversion",
        "samples.approve_protocolversion",
        "samples.withdraw_subject",
        "samples.add_assayresult",
        "manufacturing.add_reagentlot",
    },
}


def sync_roles(apps: Any) -> None:
    """Make the groups and their permissions match ROLE_PERMISSIONS (for data migrations)."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, codes in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        wanted = []
        for code in sorted(codes):
            app_label, codename = code.split(".", 1)
            perm = permission_model.objects.filter(content_type__app_label=app_label, codename=codename).first()
            # A permission of a model that a later migration adds is granted when that migration has run;
            # tests/lims/test_roles.py checks that every name here exists once all migrations are applied.
            if perm is not None:
                wanted.append(perm)
        group.permissions.set(wanted)


def has_role(user: Any, *roles: str) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return user.groups.filter(name__in=roles).exists()


def require_permission(user: Any, permission: str, *, action: str) -> None:
    """Refuse, in words, a step the person's role does not allow."""
    from lims.errors import DomainError

    if not getattr(user, "is_authenticated", False) or not user.is_active or not user.has_perm(permission):
        raise DomainError(f"Your role does not allow you to {action}.", code="forbidden")

"""QA's release review and signed decision, inside the Django admin (the QA workplace).

``BatchReleaseAdminMixin`` is mixed into the Batch ``ModelAdmin`` (``manufacturing/admin.py``)::

    class BatchAdmin(BatchReleaseAdminMixin, ReadOnlyAuditedAdmin): ...

It adds two pages under the batch's admin URL and a "Release review" link on the change page:

* ``<id>/release-review/`` — everything QA reads before signing (``manufacturing.documents.batch_dossier``);
* ``<id>/decide/<decision>/`` — the confirmation page that re-asks username and password and calls
  ``batch_release_decide``; ``decision`` is ``released``, ``conditional`` or ``rejected``.

Nothing here decides anything: a refusal comes from the service, with every reason, and nothing is
written. Nothing is registered here either; the Batch admin is owned by ``manufacturing/admin.py``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from lims.errors import DomainError
from manufacturing.documents import batch_dossier
from manufacturing.models import BATCH_TRANSITIONS, Batch, BatchStatus
from manufacturing.release_forms import ReleaseDecisionForm
from manufacturing.services.release import batch_release_decide, release_blockers

DECIDE = "manufacturing.decide_release"


class Decision:
    """What each decision is called on the button and which meaning its signature carries."""

    LABELS: dict[str, str] = {
        BatchStatus.RELEASED: "Release",
        BatchStatus.CONDITIONALLY_RELEASED: "Conditional release pending sterility",
        BatchStatus.REJECTED: "Reject",
    }
    MEANINGS: dict[str, str] = {
        BatchStatus.RELEASED: "released",
        BatchStatus.CONDITIONALLY_RELEASED: "released",
        BatchStatus.REJECTED: "rejected",
    }


class BatchReleaseAdminMixin:
    """Release review and signed QA decision for the Batch admin (see the module docstring)."""

    change_form_template = "admin/manufacturing/batch/release_change_form.html"
    release_review_template = "admin/manufacturing/batch/release_review.html"
    release_decide_template = "admin/manufacturing/batch/release_decide.html"

    admin_site: admin.AdminSite
    opts: Any

    def _url_name(self, page: str) -> str:
        return f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_{page}"

    def get_urls(self) -> list[URLPattern]:
        # Before the ModelAdmin's own URLs: its catch-all "<path:object_id>/" would otherwise match first.
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/release-review/", wrap(self.release_review_view), name=f"{info}_release_review"),
            path(
                "<path:object_id>/decide/<str:decision>/",
                wrap(self.release_decide_view),
                name=f"{info}_release_decide",
            ),
            *super().get_urls(),  # type: ignore[misc]
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {"release_review_url": reverse(self._url_name("release_review"), args=[object_id])}
        context.update(extra_context or {})
        return super().change_view(request, object_id, form_url, context)  # type: ignore[misc]

    # --- Pages ------------------------------------------------------------------------------------------

    def _batch(self, object_id: str) -> Batch:
        batch = Batch.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        if batch is None:
            raise Http404(f"No batch with id {object_id}.")
        return batch

    def _context(self, request: HttpRequest, batch: Batch, title: str) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "is_nav_sidebar_enabled": False,  # the review's tables need the page's full width on a tablet
            "opts": self.opts,
            "title": title,
            "batch": batch,
            "change_url": reverse(self._url_name("change"), args=[batch.pk]),
            "review_url": reverse(self._url_name("release_review"), args=[batch.pk]),
            "certificate_url": reverse("release:certificate", args=[batch.lot_number]),
            "batch_record_url": reverse("release:batch-record", args=[batch.lot_number]),
        }

    def decisions(self, request: HttpRequest, batch: Batch) -> list[tuple[str, str, str]]:
        """The decisions this person may take on the batch now: (value, button label, URL)."""
        if not request.user.has_perm(DECIDE):
            return []
        conditional_allowed = batch.specification is not None and batch.specification.allows_conditional_release
        found = []
        for decision, label in Decision.LABELS.items():
            if decision not in BATCH_TRANSITIONS[batch.status]:
                continue
            if decision == BatchStatus.CONDITIONALLY_RELEASED and not conditional_allowed:
                continue
            found.append((decision, label, reverse(self._url_name("release_decide"), args=[batch.pk, decision])))
        return found

    def release_review_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not request.user.has_perm("manufacturing.view_batch"):
            raise PermissionDenied("Your role does not allow you to review batches.")
        dossier = batch_dossier(self._batch(object_id))
        context = self._context(request, dossier.batch, f"Release review: batch {dossier.batch.lot_number}")
        context.update({"d": dossier, "decisions": self.decisions(request, dossier.batch)})
        return TemplateResponse(request, self.release_review_template, context)

    def release_decide_view(self, request: HttpRequest, object_id: str, decision: str) -> HttpResponse:
        if decision not in Decision.LABELS:
            raise Http404("Choose release, conditional release or reject.")
        if not request.user.has_perm(DECIDE):
            raise PermissionDenied("Your role does not allow you to release or reject batches.")
        batch = self._batch(object_id)
        meaning = Decision.MEANINGS[decision]
        form = ReleaseDecisionForm(
            (request.POST if request.method == "POST" else None),
            decision=decision,
            initial={"username": request.user.get_username()},
        )
        error, reasons = "", []
        if request.method == "POST" and form.is_valid():
            try:
                decided = batch_release_decide(
                    batch=batch,
                    acting_user=request.user,
                    decision=decision,
                    signature=form.signature(meaning),
                    justification=form.cleaned_data.get("justification", ""),
                )
            except DomainError as exc:
                error = exc.message
                reasons = [reason for reason in exc.reasons if reason != exc.message]
            else:
                self.message_user(  # type: ignore[attr-defined]
                    request,
                    f"Batch {decided.lot_number}: {decided.get_status_display()}. Signed “{meaning}” by "
                    f"{request.user.printed_name}.",  # type: ignore[union-attr]
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse(self._url_name("change"), args=[batch.pk]))
        context = self._context(request, batch, f"{Decision.LABELS[decision]}: batch {batch.lot_number}")
        context.update(
            {
                "form": form,
                "decision": decision,
                "decision_label": Decision.LABELS[decision],
                "meaning": meaning,
                "error": error,
                "reasons": reasons,
                "blockers": [] if decision == BatchStatus.REJECTED else release_blockers(batch, decision=decision),
            }
        )
        status = 400 if request.method == "POST" else 200
        return TemplateResponse(request, self.release_decide_template, context, status=status)

"""/scan/: a keyboard-wedge scanner (or the camera) sends a payload; Stroma opens the item."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from lims.forms import ScanForm
from lims.services import scan_resolve


@login_required
@permission_required("lims.view_label", raise_exception=True)
@require_http_methods(["GET", "POST"])
def scan(request: HttpRequest) -> HttpResponse:
    form = ScanForm(request.POST or None)
    error = ""
    if request.method == "POST":
        if form.is_valid():
            result = scan_resolve(payload=form.cleaned_data["payload"], acting_user=request.user)
            if result.label is not None:
                return redirect(result.label.get_absolute_url())
            error = result.error
        else:
            error = "Nothing was scanned. Scan the QR code on the item's label."
        form = ScanForm()  # an empty, focused box for the next scan
    status = 400 if error else 200
    return render(request, "lims/scan.html", {"form": form, "error": error}, status=status)

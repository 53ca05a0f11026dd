"""/scan/: a keyboard-wedge scanner (or the camera) sends a payload; Stroma opens the item."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from lims.forms import ScanForm
from lims.models import Label, LabelKind
from lims.services import scan_resolve

# Labels whose code is their item's own code, the key of the item's page (the services label a flask
# and a reagent lot with the item's code): the redirect is built from the label without reading the item.
PAGE_BY_CODE: dict[str, str] = {
    LabelKind.FLASK: "manufacturing:flask-detail",
    LabelKind.REAGENT_LOT: "manufacturing:lot-detail",
}


def _item_url(label: Label) -> str:
    page = PAGE_BY_CODE.get(label.kind)
    return reverse(page, args=[label.code]) if page else label.get_absolute_url()


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
                return redirect(_item_url(result.label))
            error = result.error
        else:
            error = "Nothing was scanned. Scan the QR code on the item's label."
        form = ScanForm()  # an empty, focused box for the next scan
    status = 400 if error else 200
    return render(request, "lims/scan.html", {"form": form, "error": error}, status=status)

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from api.views import cleanroom, clinic, docs, fhir, records, scans, tokens

app_name = "api"

router = SimpleRouter()
router.register("studies", records.StudyViewSet, basename="study")
router.register("subjects", records.SubjectViewSet, basename="subject")
router.register("aspirates", clinic.AspirateViewSet, basename="aspirate")
router.register("batches", cleanroom.BatchViewSet, basename="batch")
router.register("flasks", cleanroom.FlaskViewSet, basename="flask")
router.register("culture-events", records.CultureEventViewSet, basename="cultureevent")
router.register("reagent-lots", cleanroom.ReagentLotViewSet, basename="reagentlot")
router.register("qc-results", records.QcResultViewSet, basename="qcresult")
router.register("deviations", records.DeviationViewSet, basename="deviation")
router.register("products", clinic.ProductViewSet, basename="product")
router.register("doses", clinic.DoseViewSet, basename="dose")
router.register("custody-events", records.CustodyEventViewSet, basename="custodyevent")
router.register("infusions", records.InfusionViewSet, basename="infusion")
router.register("follow-up-results", records.FollowUpResultViewSet, basename="followupresult")
router.register("reminders", records.ReminderViewSet, basename="reminder")
router.register("tokens", tokens.TokenViewSet, basename="token")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", docs.api_docs, name="docs"),
    path("scans/", scans.ScanView.as_view(), name="scan"),
    path("labels/<str:code>/custody/", scans.CustodyView.as_view(), name="label-custody"),
    path("fhir/BiologicallyDerivedProduct/<str:code>", fhir.ProductFhirView.as_view(), name="fhir-product"),
    path("fhir/Procedure/<str:pk>", fhir.ProcedureFhirView.as_view(), name="fhir-procedure"),
    *router.urls,
    re_path(r"^(?P<rest>.*)$", docs.api_not_found),
]

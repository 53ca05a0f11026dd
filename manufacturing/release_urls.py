"""QC and QA pages of release (mounted at /release/); QA's signed decision lives in the admin review."""

from django.urls import path

from manufacturing import release_views as views

app_name = "release"
urlpatterns = [
    path("", views.index, name="index"),
    path("studies/<str:study_code>/specifications/", views.specification_list, name="spec-list"),
    path("studies/<str:study_code>/specifications/draft/", views.specification_draft, name="spec-draft"),
    path("specifications/<int:pk>/", views.specification_detail, name="spec-detail"),
    path("specifications/<int:pk>/approve/", views.specification_approve, name="spec-approve"),
    path("batches/<str:lot_number>/", views.batch_page, name="batch"),
    path("batches/<str:lot_number>/start-testing/", views.batch_start_testing, name="start-testing"),
    path("batches/<str:lot_number>/results/", views.results_entry, name="results"),
    path("batches/<str:lot_number>/certificate-of-analysis.pdf", views.certificate_pdf, name="certificate"),
    path("batches/<str:lot_number>/batch-record.pdf", views.batch_record, name="batch-record"),
    path("results/<int:pk>/retest/", views.result_retest, name="retest"),
    path("results/<int:pk>/invalidate/", views.result_invalidate, name="invalidate"),
    path("deviations/", views.deviation_list, name="deviation-list"),
    path("deviations/<str:code>/close/", views.deviation_close, name="deviation-close"),
    path("sessions/new/", views.session_new, name="session-new"),
    path("sessions/<int:pk>/", views.session_detail, name="session-detail"),
    path("sessions/<int:pk>/readings/new/", views.em_reading_new, name="em-reading-new"),
]

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from lims import scan, views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("scan/", scan.scan, name="scan"),
    path("labels/<str:code>/", views.label_detail, name="label-detail"),
    path("labels/<str:code>/qr.svg", views.label_qr, name="label-qr"),
    path("labels/<str:code>/label.pdf", views.label_pdf, name="label-pdf"),
    path("labels/<str:code>/label.zpl", views.label_zpl, name="label-zpl"),
    path("labels/<str:code>/custody/new/", views.custody_new, name="custody-new"),
    path("records/<int:content_type_id>/<int:object_id>/sign/", views.record_sign_view, name="record-sign"),
    path("records/<int:content_type_id>/<int:object_id>/audit/", views.audit_trail, name="audit-trail"),
    path("reminders/", views.reminder_inbox, name="reminder-inbox"),
    path("reminders/<int:pk>/acknowledge/", views.reminder_acknowledge_view, name="reminder-acknowledge"),
    path("reminders/<int:pk>/snooze/", views.reminder_snooze_view, name="reminder-snooze"),
    path("reminders/preferences/", views.reminder_preferences, name="reminder-preferences"),
    path("samples/", include("samples.urls")),
    path("manufacturing/", include("manufacturing.urls")),
    path("release/", include("manufacturing.release_urls")),
    path("product/", include("manufacturing.product_urls")),
    path("api/", include("api.urls")),
    path("admin/", admin.site.urls),
]

admin.site.site_header = "Stroma QA workplace"
admin.site.site_title = "Stroma"

"""Product pages, from formulation to the infusion record (mounted at /product/)."""

from django.urls import path

from manufacturing import product_views as views

app_name = "product"
urlpatterns = [
    path("bedside/", views.bedside, name="bedside"),
    path("batches/<str:lot_number>/formulate/", views.formulate, name="formulate"),
    path("dose/<int:pk>/verify/", views.dose_verify, name="dose-verify"),
    path("infusions/<int:pk>/", views.infusion, name="infusion"),
    path("subjects/<str:code>/timeline/", views.subject_timeline, name="subject-timeline"),
    path("<str:code>/", views.detail, name="detail"),
    path("<str:code>/dose/", views.dose, name="dose"),
    path("<str:code>/issue/", views.issue, name="issue"),
    path("<str:code>/receive/", views.receive, name="receive"),
    path("<str:code>/dispose/", views.dispose, name="dispose"),
]

from django.urls import path

from samples import views

app_name = "samples"
urlpatterns = [
    path("subjects/", views.subject_list, name="subject-list"),
    path("subjects/<str:code>/", views.subject_detail, name="subject-detail"),
]

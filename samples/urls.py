from django.urls import path

from samples import views

app_name = "samples"
urlpatterns = [
    path("studies/", views.study_list, name="study-list"),
    path("studies/<str:code>/", views.study_detail, name="study-detail"),
    path("studies/<str:code>/protocol/revise/", views.protocol_revise, name="protocol-revise"),
    path("studies/<str:code>/subjects/new/", views.subject_register, name="subject-register"),
    path("studies/<str:code>/endpoint/", views.study_endpoint_page, name="study-endpoint"),
    path("protocols/<int:pk>/approve/", views.protocol_approve, name="protocol-approve"),
    path("subjects/", views.subject_list, name="subject-list"),
    path("subjects/<str:code>/", views.subject_detail, name="subject-detail"),
    path("subjects/<str:code>/eligibility/", views.eligibility_checklist, name="eligibility-checklist"),
    path("subjects/<str:code>/eligibility/confirm/", views.eligibility_confirm, name="eligibility-confirm"),
    path("subjects/<str:code>/screen-fail/", views.subject_screen_fail, name="subject-screen-fail"),
    path("subjects/<str:code>/withdraw/", views.subject_withdraw, name="subject-withdraw"),
    path("subjects/<str:code>/aspirates/new/", views.aspirate_collect, name="aspirate-collect"),
    path("subjects/<str:code>/follow-up/new/", views.follow_up_sample_collect, name="follow-up-collect"),
    path("subjects/<str:code>/das28/new/", views.disease_activity_record, name="das28-record"),
    path("aspirates/<str:code>/", views.aspirate_detail, name="aspirate-detail"),
    path("aspirates/<str:code>/dispatch/", views.aspirate_dispatch, name="aspirate-dispatch"),
    path("aspirates/<str:code>/receive/", views.aspirate_receive, name="aspirate-receive"),
    path("receive/", views.receive_scan, name="receive-scan"),
    path("follow-up/<str:code>/", views.follow_up_sample_detail, name="follow-up-sample"),
    path("follow-up/<str:code>/results/", views.follow_up_results, name="follow-up-results"),
]

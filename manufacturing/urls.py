from django.urls import path

from manufacturing import views

app_name = "manufacturing"
urlpatterns = [
    path("batches/", views.batch_list, name="batch-list"),
    path("batches/new/", views.batch_start_scan, name="batch-start-scan"),
    path("aspirates/<str:aspirate_code>/batch/new/", views.batch_start, name="batch-start"),
    path("batches/<str:lot_number>/", views.batch_detail, name="batch-detail"),
    path("batches/<str:lot_number>/labels.pdf", views.batch_labels_pdf, name="batch-labels"),
    path("batches/<str:lot_number>/seed/", views.batch_seed, name="batch-seed"),
    path("batches/<str:lot_number>/harvest/", views.batch_harvest, name="batch-harvest"),
    path("flasks/<str:code>/", views.flask_detail, name="flask-detail"),
    path("flasks/<str:code>/feed/", views.flask_feed, name="flask-feed"),
    path("flasks/<str:code>/observe/", views.flask_observe, name="flask-observe"),
    path("flasks/<str:code>/passage/", views.flask_passage, name="flask-passage"),
    path("flasks/<str:code>/discard/", views.flask_discard, name="flask-discard"),
    path("lots/", views.lot_list, name="lot-list"),
    path("lots/new/", views.lot_receive, name="lot-receive"),
    path("lots/<str:code>/", views.lot_detail, name="lot-detail"),
    path("lots/<str:code>/release/", views.lot_release, name="lot-release"),
    path("lots/<str:code>/recall/", views.lot_recall, name="lot-recall"),
]

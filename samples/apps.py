from django.apps import AppConfig


class SamplesConfig(AppConfig):
    name = "samples"
    verbose_name = "Samples"
    default_auto_field = "django.db.models.BigAutoField"

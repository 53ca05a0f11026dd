from django.apps import AppConfig


class ManufacturingConfig(AppConfig):
    name = "manufacturing"
    verbose_name = "Manufacturing"
    default_auto_field = "django.db.models.BigAutoField"

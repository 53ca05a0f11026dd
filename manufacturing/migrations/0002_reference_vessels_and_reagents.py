"""Reference data: culture vessels with their growth areas, and the reagent catalogue."""

from decimal import Decimal

from django.db import migrations

VESSELS = {"T25": 25, "T75": 75, "T175": 175, "T225": 225, "CellSTACK-1": 636, "CellSTACK-2": 1272, "CellSTACK-5": 3180}
REAGENTS = [
    ("MEM-alpha", "medium"),
    ("Fetal bovine serum (FBS)", "supplement"),
    ("Human platelet lysate", "supplement"),
    ("TrypLE Select", "detachment"),
    ("Trypsin-EDTA 0.05%", "detachment"),
    ("PBS without Ca/Mg", "buffer"),
    ("Heparin", "anticoagulant"),
]


def load(apps, schema_editor):
    vessel = apps.get_model("manufacturing", "VesselType")
    reagent = apps.get_model("manufacturing", "Reagent")
    for name, area in VESSELS.items():
        vessel.objects.get_or_create(name=name, defaults={"growth_area_cm2": Decimal(area)})
    for name, category in REAGENTS:
        reagent.objects.get_or_create(name=name, defaults={"category": category})


class Migration(migrations.Migration):
    dependencies = [("manufacturing", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]

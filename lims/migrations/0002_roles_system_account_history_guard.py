"""Create the roles, the system account, and the database guard on history tables.

The guard is re-applied after every migrate (lims.apps), so history tables that later
migrations add are guarded too.
"""

from django.db import migrations

from lims.audit import install_history_guard
from lims.roles import sync_roles


def create_roles_and_system_account(apps, schema_editor):
    sync_roles(apps)
    user_model = apps.get_model("lims", "User")
    user_model.objects.get_or_create(
        username="stroma-system",
        defaults={"first_name": "Stroma", "last_name": "system", "is_active": False, "password": "!"},
    )


def install_guard(apps, schema_editor):
    install_history_guard(schema_editor.connection)


def remove_guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS stroma_refuse_history_change() CASCADE")


class Migration(migrations.Migration):
    dependencies = [
        ("lims", "0001_initial"),
        ("samples", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_roles_and_system_account, migrations.RunPython.noop),
        migrations.RunPython(install_guard, remove_guard),
    ]

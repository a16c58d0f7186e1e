from django.db import migrations

from cdc.sql import run_sql_file


class Migration(migrations.Migration):
    dependencies = [("cdc", "0005_doorbell_lock")]
    operations = [run_sql_file("0006_group_position.sql")]

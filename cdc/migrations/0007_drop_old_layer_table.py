from django.db import migrations

from cdc.sql import run_sql_file


class Migration(migrations.Migration):
    dependencies = [("cdc", "0006_group_position")]
    operations = [run_sql_file("0007_drop_old_layer_table.sql")]

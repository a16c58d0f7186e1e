from django.db import migrations

from cdc.sql import run_sql_file


class Migration(migrations.Migration):
    dependencies = [("cdc", "0007_drop_old_layer_table"), ("core", "0002_ticker")]
    operations = [run_sql_file("0008_truncate_and_ring.sql")]

from django.db import migrations

from cdc.sql import run_sql_file


class Migration(migrations.Migration):
    dependencies = [("cdc", "0003_relay")]
    operations = [run_sql_file("0004_channel_layer.sql")]

from django.db import migrations

from cdc.sql import run_sql_file


class Migration(migrations.Migration):
    dependencies = [("cdc", "0004_channel_layer")]
    operations = [run_sql_file("0005_doorbell_lock.sql")]

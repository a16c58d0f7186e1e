from django.db import migrations

from cdc.sql import run_sql_file


class Migration(migrations.Migration):
    initial = True
    operations = [run_sql_file("0001_cdc_schema.sql")]

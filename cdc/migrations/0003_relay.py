from django.db import migrations

from cdc.sql import run_sql_file


class Migration(migrations.Migration):
    dependencies = [("cdc", "0002_track_article_post")]
    operations = [run_sql_file("0003_relay.sql")]

from django.db import migrations

from cdc.sql import run_sql_file


class Migration(migrations.Migration):
    dependencies = [("cdc", "0001_cdc_schema"), ("core", "0001_initial")]
    operations = [run_sql_file("0002_track_article_post.sql")]

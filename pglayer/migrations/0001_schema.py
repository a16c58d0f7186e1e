from django.db import migrations

from pglayer.sql import SCHEMA


class Migration(migrations.Migration):
    operations = [migrations.RunSQL([SCHEMA.read_text()])]

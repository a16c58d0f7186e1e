import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("cdc", "0001_cdc_schema"),
    ]

    operations = [
        migrations.CreateModel(
            name="Bid",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("item", models.TextField()),
                ("amount", models.DecimalField(decimal_places=2, max_digits=12)),
                ("sealed", models.BooleanField(db_default=False)),
                ("note", models.TextField(db_default="")),
                ("placed_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
                (
                    "bidder",
                    models.ForeignKey(
                        null=True, on_delete=django.db.models.deletion.CASCADE, to=settings.AUTH_USER_MODEL
                    ),
                ),
            ],
            options={
                "db_table": "streams_app_bid",
            },
        ),
        # Under capture, as any app puts a table (README, "Capture without Django").
        migrations.RunSQL(
            "SELECT cdc.track('public.streams_app_bid')",
            reverse_sql="SELECT cdc.untrack('public.streams_app_bid')",
        ),
    ]

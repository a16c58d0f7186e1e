from django.apps import AppConfig


class PglayerConfig(AppConfig):
    name = "pglayer"
    verbose_name = "Postgres channel layer"

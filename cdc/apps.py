from django.apps import AppConfig


class CdcConfig(AppConfig):
    name = "cdc"
    verbose_name = "Change data capture"

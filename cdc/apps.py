from django.apps import AppConfig


class CdcConfig(AppConfig):
    name = "cdc"
    verbose_name = "Change data capture"

    def ready(self) -> None:
        from cdc import checks, declarations  # noqa: F401  (checks: registers the system checks)

        declarations.autodiscover()

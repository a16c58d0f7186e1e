from django.apps import AppConfig


class ConsumersConfig(AppConfig):
    name = "consumers"

    def ready(self) -> None:
        from consumers import sessions  # noqa: F401  (connects the logout signal)

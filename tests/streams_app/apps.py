from django.apps import AppConfig


class StreamsAppConfig(AppConfig):
    name = "tests.streams_app"
    label = "streams_app"

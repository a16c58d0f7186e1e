"""Django settings for bench/layer.py: the project's, plus channels-postgres, which is installed
only for the benchmark (its models need their app)."""

from core.settings import *  # noqa: F403
from core.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "channels_postgres"]

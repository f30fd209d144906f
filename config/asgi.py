import os

from django.core.asgi import get_asgi_application

from .celery import app as celery_app  # noqa: F401  (the app the webhook publishes through)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_asgi_application()

import os

from django.core.asgi import get_asgi_application

from .bootstrap import prepare_data_dir

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
prepare_data_dir()
application = get_asgi_application()

#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    import config.celery  # noqa: F401  (prepares the data folder; commands publish through this Celery app)

    execute_from_command_line(sys.argv)

"""gunicorn settings for the web role (`gunicorn -c python:config.gunicorn_conf config.wsgi`).

Threaded workers, a few more processes than cores: a webhook spends about a third of its time waiting on PostgreSQL
and the broker, and a second thread per process (and one process more than cores) fills that wait. Measured with
`manage.py bench_ingest` on 2 cores: 2 x 1 served 254 req/s, 2 x 2 279, 3 x 2 355, 4 x 2 347, 3 x 4 290, 6 x 2 273.
In a container give WEB_CONCURRENCY (the cores the pod may use, plus one): the process sees the node's cores.
"""

import multiprocessing
import os

bind = os.environ.get("WEB_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "2"))
keepalive = 30  # seconds; platforms that send many webhooks keep their connection
accesslog = "-"

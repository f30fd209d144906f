"""Run inside the host project: migrate, create a platform, post a signed webhook, read the tags back."""

import base64
import io
import json
import os
import uuid

import django

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.plugin.host_project.settings"
django.setup()

from celery import Celery  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from PIL import Image  # noqa: E402

from moderation.services import COMMAND_LINE, platform_create  # noqa: E402
from transport.signatures import sign  # noqa: E402

# The host points Celery wherever it likes; here, run tasks in-process.
Celery("host", set_as_current=True).conf.update(task_always_eager=True, task_eager_propagates=True)

call_command("migrate", verbosity=0)
credentials = platform_create(slug="host-shop", acting_user=COMMAND_LINE)
buffer = io.BytesIO()
Image.effect_mandelbrot((256, 256), (-2, -1.5, 1, 1.5), 64).convert("RGB").save(buffer, "JPEG")
body = json.dumps(
    {
        "type": "upload.created",
        "upload": {"external_id": "p1", "data_base64": base64.b64encode(buffer.getvalue()).decode()},
    }
).encode()
headers = {
    f"HTTP_{k.upper().replace('-', '_')}": v
    for k, v in sign(body, secret=credentials.webhook_secret, msg_id=uuid.uuid4().hex).items()
}
client = Client()
accepted = client.post("/marketplace/hooks/host-shop/uploads", data=body, content_type="application/json", **headers)
lookup = client.get(accepted.json()["status_url"], HTTP_AUTHORIZATION=f"Token {credentials.api_token}")
ready = client.get("/marketplace/readyz")
print(
    json.dumps(
        {
            "accepted": accepted.status_code,
            "status_url": accepted.json()["status_url"],
            "lookup": lookup.json(),
            "readyz": [ready.status_code, ready.json()],
        }
    )
)

import base64
import json
import uuid
from pathlib import Path

import requests
from django.core.management.base import BaseCommand, CommandError

from moderation.models import Platform
from webhooks.signatures import sign


class Command(BaseCommand):
    help = "Send a signed upload.created webhook for an image file to a running service and print the response."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("image", type=Path)
        parser.add_argument("--platform", default="demo")
        parser.add_argument("--external-id", default="")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument(
            "--secret", default="", help="webhook secret; default: the platform's, read from the database"
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        secret = options["secret"]
        if not secret:
            platform = Platform.objects.filter(slug=options["platform"]).first()
            if platform is None:
                raise CommandError(f"no platform {options['platform']!r}; pass --secret or create it first")
            secret = platform.webhook_secrets[0]
        image = options["image"].read_bytes()
        body = json.dumps(
            {
                "type": "upload.created",
                "upload": {
                    "external_id": options["external_id"] or f"test-{uuid.uuid4().hex[:12]}",
                    "data_base64": base64.b64encode(image).decode(),
                },
            }
        ).encode()
        headers = {"content-type": "application/json", **sign(body, secret=secret, msg_id=f"msg_{uuid.uuid4().hex}")}
        url = f"{options['base_url'].rstrip('/')}/webhooks/{options['platform']}/uploads"
        response = requests.post(url, data=body, headers=headers, timeout=30)
        self.stdout.write(f"HTTP {response.status_code}")
        self.stdout.write(response.text)

import base64
import json
import os
import uuid
from pathlib import Path
from typing import Any

import requests
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import NoReverseMatch, reverse

from moderation.models import Platform
from transport.signatures import sign


class Command(BaseCommand):
    help = (
        "Send a signed upload.created webhook to a running service and print the response: an image file's bytes, or "
        "--url for the service to fetch. The webhook path comes from this project's URLs (plugin mounts included)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("image", type=Path, nargs="?", help="image file to send inline (data_base64)")
        parser.add_argument("--url", default="", help="send this image URL instead of a file")
        parser.add_argument("--metadata", default="{}", help='upload metadata as a JSON object, e.g. {"flagged": true}')
        parser.add_argument("--platform", default="demo")
        parser.add_argument("--external-id", default="")
        parser.add_argument(
            "--base-url",
            default="",
            help="where the service runs; default http://127.0.0.1:$PORT (PORT as for make run, else 8000)",
        )
        parser.add_argument("--path", default="", help="webhook path; default: reversed from this project's URLs")
        parser.add_argument(
            "--secret", default="", help="webhook secret; default: the platform's, read from the database"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if bool(options["image"]) == bool(options["url"]):
            raise CommandError("give an image file or --url, not both")
        try:
            metadata = json.loads(options["metadata"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--metadata is not JSON: {exc}") from exc
        if not isinstance(metadata, dict):
            raise CommandError("--metadata must be a JSON object")
        secret = options["secret"]
        if not secret:
            platform = Platform.objects.filter(slug=options["platform"]).first()
            if platform is None:
                raise CommandError(f"no platform {options['platform']!r}; pass --secret or create it first")
            secret = platform.webhook_secrets[0]

        upload: dict[str, Any] = {"external_id": options["external_id"] or f"test-{uuid.uuid4().hex[:12]}"}
        if options["url"]:
            upload["url"] = options["url"]
        else:
            upload["data_base64"] = base64.b64encode(options["image"].read_bytes()).decode()
        if metadata:
            upload["metadata"] = metadata
        body = json.dumps({"type": "upload.created", "upload": upload}).encode()

        path = options["path"]
        if not path:
            try:
                path = reverse("webhook-uploads", kwargs={"platform": options["platform"]})
            except NoReverseMatch as exc:
                raise CommandError("the webhook URL is not in this project's URLs; pass --path") from exc
        base_url = options["base_url"] or f"http://127.0.0.1:{os.environ.get('PORT') or '8000'}"
        headers = {"content-type": "application/json", **sign(body, secret=secret, msg_id=f"msg_{uuid.uuid4().hex}")}
        url = f"{base_url.rstrip('/')}/{path.lstrip('/')}"
        try:
            response = requests.post(url, data=body, headers=headers, timeout=30)
        except requests.ConnectionError as exc:
            raise CommandError(f"cannot reach {base_url} (is `make run` going? PORT / --base-url): {exc}") from exc
        self.stdout.write(f"HTTP {response.status_code}")
        self.stdout.write(response.text)

"""Image bytes a webhook carried, held in the database until the fetch stage stores them (object storage or disk), so
the webhook's request writes one row and no file."""

from __future__ import annotations

from django.db import models

from moderation.models import Upload


class PendingImage(models.Model):
    upload = models.OneToOneField(Upload, on_delete=models.CASCADE, primary_key=True, related_name="pending_image")
    data = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{len(self.data)} bytes for {self.upload_id}"

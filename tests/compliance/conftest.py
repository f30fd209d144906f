from __future__ import annotations

import uuid
from typing import Any

import pytest


def labelled_upload(credentials: Any, external_id: str | None = None, **fields: Any) -> Any:
    """An upload the detector tagged ai-generated, with its automatic statement of reasons issued."""
    from compliance.models import StatementKind
    from compliance.services import statement_issue
    from moderation.models import Upload, UploadStatus

    upload = Upload.objects.create(
        platform=credentials.platform,
        external_id=external_id or f"img-{uuid.uuid4().hex[:8]}",
        webhook_id=f"msg_{uuid.uuid4().hex}",
        sha256="a" * 64,
        status=UploadStatus.TAGGED,
        scan_verdict="ai-generated",
        scan_score=0.93,
        scan_model_version="cascade@0.3.0",
        **fields,
    )
    statement_issue(upload=upload, kind=StatementKind.AUTOMATIC, restricts=True, threshold=0.5)
    return upload


@pytest.fixture
def transparency_db() -> Any:
    from tests.compliance.transparency_db_server import TransparencyDbServer

    with TransparencyDbServer() as server:
        yield server


@pytest.fixture
def submitting(platform, transparency_db) -> Any:
    """The platform's policy with submission to the local Transparency Database turned on."""
    from compliance.services import policy_for

    policy = policy_for(platform.platform)
    policy.transparency_db_enabled = True
    policy.transparency_db_url = transparency_db.url
    policy.transparency_db_token = transparency_db.token
    policy.territorial_scope = ["DE", "FR", "NL"]
    policy.save()
    return policy

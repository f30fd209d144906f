"""Audit actions are constants: a misspelt action name is an error, not a new kind of row."""

from __future__ import annotations

import pytest

from moderation.models import AuditEvent
from moderation.services import AuditAction, audit_record
from tests.conftest import TEST_ACTOR


def test_an_action_outside_the_constants_is_refused(platform):
    with pytest.raises(ValueError, match=r"upload\.reveiwed"):
        audit_record(actor=TEST_ACTOR, platform=platform.platform, action="upload.reveiwed", obj=platform.platform)
    assert not AuditEvent.objects.filter(action="upload.reveiwed").exists()


def test_every_recorded_action_is_one_of_the_constants(platform):
    assert set(AuditEvent.objects.values_list("action", flat=True)) <= set(AuditAction)
    assert AuditEvent.objects.filter(action=AuditAction.PLATFORM_CREATED).exists()

"""`make run` prepares the model before it says "Serving": `prepare_model` exports each network to ONNX once, and a
worker logs when its model is loaded and warm (the line run.py waits for)."""

from __future__ import annotations

import logging
from io import StringIO

import pytest
from django.core.management import call_command

from config import run
from scanning import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def onnx_model(coin_model, settings, tmp_path):
    settings.AI_MODERATION = {
        **settings.AI_MODERATION,
        "DETECTOR_CPU_RUNTIME": "onnxruntime",
        "DETECTOR_ONNX_CACHE_DIR": str(tmp_path / "onnx"),
    }
    return tmp_path / "onnx"


def _prepare() -> str:
    out = StringIO()
    call_command("prepare_model", stdout=out)
    return out.getvalue()


def test_prepare_model_exports_once_then_finds_the_cache(onnx_model):
    first = _prepare()
    assert "Preparing model tiny-test_efficientnet@1" in first
    assert "exported to ONNX" in first and "Model ready in" in first
    assert len(list(onnx_model.glob("*.onnx"))) == 1
    again = _prepare()
    assert "ONNX export cached" in again and "exported to ONNX" not in again


def test_a_warming_worker_logs_that_its_model_is_ready(onnx_model, settings, caplog):
    settings.AI_MODERATION = {**settings.AI_MODERATION, "DETECTOR_WARM_UP": True, "DETECTOR_MAX_BATCH_SIZE": 2}
    with caplog.at_level(logging.INFO):
        tasks._warm_up_detector()
    (line,) = [record.getMessage() for record in caplog.records if tasks.DETECTOR_READY_LOG in record.getMessage()]
    assert "tiny-test_efficientnet@1 loaded and warmed up in" in line
    assert run.DETECTOR_READY_LOG == tasks.DETECTOR_READY_LOG, "run.py waits for exactly this line"

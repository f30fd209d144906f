import json
import random
import shutil
import tempfile
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from moderation.models import Upload
from moderation.services import COMMAND_LINE, platform_create
from registry.models import ModelStatus, ModelVersion
from retraining.services import model_retrain
from reviews.models import ReviewDecision


class Command(BaseCommand):
    help = (
        "Replay N reviewer labels from a folder (real/ + fake/, e.g. one source the model never saw) through the real "
        "reviewer-label → retrain → gate path, for each N, and report AUROC on the folder's remaining images. "
        "Everything it writes to the database is rolled back."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--data", type=Path, required=True)
        parser.add_argument("--sizes", default="25,50,100,200")
        parser.add_argument("--out", type=Path, default=None, help="write learning_curve.json and .png here")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--active",
            type=Path,
            default=None,
            help="checkpoint to adapt (default: the active model), e.g. one trained without the folder's sources",
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        from training.datasets import folder_images

        if decided := ReviewDecision.objects.count():
            # A retrain learns every reviewer label in the database: the curve would not be of N labels.
            raise CommandError(
                f"this database holds {decided} reviewer decisions, which every point's retrain would also learn "
                "from: run it on a fresh one (e.g. MODERATION_DATA_DIR=/tmp/lc python manage.py migrate first)"
            )
        items = folder_images(options["data"], source=options["data"].name)
        random.Random(options["seed"]).shuffle(items)
        sizes = [int(size) for size in options["sizes"].split(",")]
        usable = [size for size in sizes if size <= len(items) - 20]
        if not usable:
            raise CommandError(f"{len(items)} images leave too few to evaluate on for sizes {sizes}")
        results = []
        with tempfile.TemporaryDirectory() as scratch:
            for size in usable:
                results.append(self._one_point(items, size, Path(scratch) / str(size), options["active"]))
                self.stdout.write(json.dumps(results[-1]))
        report = {
            "data": str(options["data"]),
            "active": str(options["active"]) if options["active"] else "the active model",
            "images": len(items),
            "seed": options["seed"],
            "points": results,
        }
        if options["out"]:
            self._write(report, options["out"])
        self.stdout.write(json.dumps(report, indent=2))

    def _one_point(self, items, size, scratch: Path, active: Path | None) -> dict:  # type: ignore[no-untyped-def]
        labelled, held_out = items[:size], items[size:]
        eval_dir = scratch / "eval"
        for item in held_out:
            folder = eval_dir / ("fake" if item.label else "real")
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(item.path, folder / item.path.name)
        overrides = {"EVAL_SET_DIR": str(eval_dir), "MODEL_STORE": str(scratch / "store"), "RETRAIN_BASE_DIR": None}
        if active is not None:
            overrides["DETECTOR_CHECKPOINT"] = str(active.resolve())
        from django.conf import settings

        # The replayed uploads' images go to the scratch folder: the rollback cannot take files back from storage.
        storages = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                                     "OPTIONS": {"location": str(scratch / "media")}}}  # fmt: skip
        with (
            override_settings(AI_MODERATION={**getattr(settings, "AI_MODERATION", {}), **overrides}, STORAGES=storages),
            transaction.atomic(),
        ):
            if active is not None:  # adapted from, and gated against, this checkpoint (all rolled back below)
                ModelVersion.objects.filter(status=ModelStatus.ACTIVE).update(status=ModelStatus.RETIRED)
                ModelVersion.objects.create(
                    name="learning-curve-active",
                    version=str(size),
                    checkpoint_path=str(active.resolve()),
                    status=ModelStatus.ACTIVE,
                    activated_at=timezone.now(),
                )
            credentials = platform_create(slug=f"learning-curve-{size}", acting_user=COMMAND_LINE)
            reviewer = get_user_model().objects.create_user(f"learning-curve-{size}")
            for index, item in enumerate(labelled):
                upload = Upload(platform=credentials.platform, external_id=str(index), webhook_id=str(index))
                upload.image.save(item.path.name, ContentFile(item.path.read_bytes()), save=False)
                upload.save()
                ReviewDecision.objects.create(
                    upload=upload, reviewer=reviewer, label="ai-generated" if item.label else "real"
                )
            candidate = model_retrain(min_new_labels=0, acting_user=COMMAND_LINE)
            gate = dict(candidate.gate) if candidate else {}
            transaction.set_rollback(True)
        return {
            "labels": size,
            "held_out": len(held_out),
            "candidate_auroc": gate.get("candidate", {}).get("auroc"),
            "candidate_accuracy": gate.get("candidate", {}).get("accuracy"),
            "active_auroc": gate.get("active", {}).get("auroc"),
            "active_accuracy": gate.get("active", {}).get("accuracy"),
            "against": gate.get("against"),
            "gate_passed": gate.get("passed"),
            "gate_reason": gate.get("reason"),
        }

    def _write(self, report: dict, out: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out.mkdir(parents=True, exist_ok=True)
        (out / "learning_curve.json").write_text(json.dumps(report, indent=2) + "\n")
        points = report["points"]
        figure, axis = plt.subplots(figsize=(5, 3.5))
        labels = [p["labels"] for p in points]
        axis.plot(labels, [p["candidate_auroc"] for p in points], "o-", label="adapted candidate")
        axis.plot(labels, [p["active_auroc"] for p in points], "--", color="grey", label="active model")
        passed = [p for p in points if p["gate_passed"]]
        if passed:
            axis.plot(
                [p["labels"] for p in passed], [p["candidate_auroc"] for p in passed], "*", markersize=12,
                color="tab:green", label="gate passed",
            )  # fmt: skip
        axis.set_xlabel("reviewer labels from this folder")
        axis.set_ylabel("AUROC on its other images")
        axis.set_ylim(0.3, 1.0)
        axis.set_title(Path(report["data"]).name, fontsize=9)
        axis.legend(loc="lower right")
        figure.tight_layout()
        figure.savefig(out / "learning_curve.png", dpi=110)
        plt.close(figure)

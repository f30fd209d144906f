from __future__ import annotations

from django import forms

from moderation.models import UploadStatus, VerdictLabel
from reviews.models import ReviewLabel
from reviews.selectors import QueueFilters

from .labels import label_choices

STATUS_CHOICES = [
    (UploadStatus.NEEDS_REVIEW, "needs review"),
    ("all", "all scanned"),
    (UploadStatus.TAGGED, "auto-tagged"),
    (UploadStatus.REVIEWED, "reviewed"),
]


class QueueFilterForm(forms.Form):
    platform = forms.ChoiceField(required=False)
    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)
    verdict = forms.ChoiceField(choices=[("", "any verdict"), *label_choices(VerdictLabel.values)], required=False)
    score_min = forms.FloatField(min_value=0, max_value=1, required=False)
    score_max = forms.FloatField(min_value=0, max_value=1, required=False)
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    escalated = forms.NullBooleanField(
        required=False,
        widget=forms.Select(choices=[("unknown", "escalated or not"), ("true", "escalated"), ("false", "CNN only")]),
    )

    def __init__(self, *args: object, platform_slugs: list[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["platform"].choices = [("", "all platforms"), *((slug, slug) for slug in platform_slugs)]

    def filters(self) -> QueueFilters:
        """The queue filters; invalid fields fall back to their defaults (the form shows their errors)."""
        self.is_valid()  # cleaned_data keeps only the valid fields
        data = self.cleaned_data
        return QueueFilters(
            platform=data.get("platform") or "",
            status=data.get("status") or UploadStatus.NEEDS_REVIEW,
            verdict=data.get("verdict") or "",
            score_min=data.get("score_min"),
            score_max=data.get("score_max"),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            escalated=data.get("escalated"),
        )


class _LabelForm(forms.Form):
    label = forms.ChoiceField(choices=label_choices(ReviewLabel.values))
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    # One of the platform policy's reason codes (checked by the service); empty: the policy's first.
    reason_code = forms.CharField(required=False, max_length=64)


class DecisionForm(_LabelForm):
    # Ticked to decide `real` on an upload that matches a confirmed fake (the item page asks for it).
    overrule_known_fake = forms.BooleanField(required=False)


class BulkDecisionForm(_LabelForm):
    uploads = forms.TypedMultipleChoiceField(coerce=str, choices=[])

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Any id is accepted here; the view looks each one up within what the user may see.
        self.fields["uploads"].valid_value = lambda value: True  # type: ignore[attr-defined]


class ThresholdsForm(forms.Form):
    ai_threshold = forms.FloatField(min_value=0, max_value=1, required=False)
    review_margin = forms.FloatField(min_value=0, max_value=0.49)

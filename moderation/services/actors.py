"""Who acts: a person (a Django user) or a named part of the service. Every action takes one (`acting_user`, required),
so the audit log and status histories always say which; nothing is silently "system"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SystemActor:
    """A part of the service acting on its own: never a user row, audited by its name."""

    name: str
    pk: None = None

    @property
    def username(self) -> str:
        return f"system:{self.name}"

    def __str__(self) -> str:
        return self.username


# The pipeline's stages, as they move uploads along.
INTAKE = SystemActor("intake")
FETCHING = SystemActor("fetching")
SCANNING = SystemActor("scanning")
# The beat-scheduled jobs (the sweeper, weekly retraining, daily calibration) and re-scans they start.
SCHEDULER = SystemActor("scheduler")
# An operator at the command line (manage.py commands), when no user is named.
COMMAND_LINE = SystemActor("manage.py")

# A Django user (AbstractBaseUser) or a SystemActor.
Actor = Any


def actor_name(actor: Actor) -> str:
    """The name the audit log and status histories show."""
    return getattr(actor, "username", "") or str(actor)

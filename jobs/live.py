"""The live group of a job (DESIGN §6): one message per committed batch or transition.

Channels delivers at most once; the message carries the last ``seq`` so a page that missed one
backfills over REST. The database is the truth, the socket only notifies.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


class LiveUpdate(TypedDict):
    # Channels routes on "type": the consumer's ``job_update`` method receives it.
    type: Literal["job.update"]
    job: str
    # The new events this message carries are first_seq..seq (first_seq == seq when it carries
    # none): a page that has drawn less than first_seq - 1 missed a message and backfills.
    first_seq: int
    seq: int
    status: str
    step: int
    total_steps: int
    epoch: float
    cost_so_far: float
    # name -> [[steps...], [values...]]: compact columns, ready for the chart.
    metrics: dict[str, list[list[float]]]
    predictions: list[dict[str, Any]]
    events: list[dict[str, Any]]


def job_group(job_id: uuid.UUID | str) -> str:
    return f"job.{job_id}"


def publish_job_event(update: LiveUpdate) -> None:
    """Send after the surrounding transaction commits (never a point the database lacks)."""
    transaction.on_commit(lambda: _send(update))


def _send(update: LiveUpdate) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(job_group(update["job"]), dict(update))
    except Exception:
        # A live view is a convenience: the page backfills from REST. Never fail the write.
        logger.exception("could not publish the live update of job %s", update["job"])

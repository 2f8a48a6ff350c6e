"""The job state machine, ingest and money rules: the only code that writes a job's status.

Every transition is one function that claims the row with a conditional UPDATE (zero rows means
another worker got there first, or the job is already past that state), writes a ``JobEvent``
and publishes the job's live update after commit (DESIGN §3). Callers use this package's names
(``services.launch_job``); the modules behind them:

- ``launching``: a config frozen into a queued job; ``transitions``: the state machine;
- ``ingest``: trainer batches; ``money``: cost, alert and budget rules;
- ``timeline``: job events, metric points and live updates;
- ``datasets``, ``configs``, ``access``: uploads, saved configs, owner-scoped lookups.
"""

from __future__ import annotations

from jobs.services.access import get_config_for_user, get_dataset_for_user, get_job_for_user
from jobs.services.configs import ConfigRefused, get_preferences, save_config, save_preferences
from jobs.services.datasets import DatasetRefused, create_dataset, delete_dataset
from jobs.services.ingest import (
    BadBatch,
    IngestEvent,
    IngestResult,
    ingest_token_job,
    parse_events,
    record_events,
    revoke_ingest_token,
)
from jobs.services.launching import LaunchRefused, LaunchRequest, ingest_token_for, launch_job
from jobs.services.money import (
    BudgetVerdict,
    cost_summary,
    judge_budget,
    mark_alert_sent,
    overspend,
    update_cost,
)
from jobs.services.timeline import PointRow
from jobs.services.transitions import (
    fail_job,
    finish_job,
    mark_provisioning,
    mark_running,
    pod_deadline,
    record_job_event,
    request_stop,
    stop_job_for_user,
)

__all__ = [
    "BadBatch",
    "BudgetVerdict",
    "ConfigRefused",
    "DatasetRefused",
    "IngestEvent",
    "IngestResult",
    "LaunchRefused",
    "LaunchRequest",
    "PointRow",
    "cost_summary",
    "create_dataset",
    "delete_dataset",
    "fail_job",
    "finish_job",
    "get_config_for_user",
    "get_dataset_for_user",
    "get_job_for_user",
    "get_preferences",
    "ingest_token_for",
    "ingest_token_job",
    "judge_budget",
    "launch_job",
    "mark_alert_sent",
    "mark_provisioning",
    "mark_running",
    "overspend",
    "parse_events",
    "pod_deadline",
    "record_events",
    "record_job_event",
    "request_stop",
    "revoke_ingest_token",
    "save_config",
    "save_preferences",
    "stop_job_for_user",
    "update_cost",
]

"""Datasets: checking an upload row by row, storing it with its report, deleting it."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import IO

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile

from jobs.dataset_files import (
    DatasetFileError,
    check_dataset_size,
    file_type_for,
    inspect_dataset,
)
from jobs.models import (
    Dataset,
)

# --- datasets --------------------------------------------------------------------------------


class DatasetRefused(Exception):
    """The upload (or deletion) cannot be accepted; the message says why."""


def create_dataset(owner: User, upload: UploadedFile, name: str | None) -> Dataset:
    """Check every row of an upload and store it with its report, or refuse it whole.

    A file with bad rows is stored (so its owner can see each line's error) but can never be
    launched. Files over the size limit or of an unknown type are refused before storing.
    """
    filename = upload.name or "dataset.jsonl"
    try:
        check_dataset_size(upload.size or 0, settings.DATASET_MAX_BYTES)
        file_type_for(filename)
    except DatasetFileError as exc:
        raise DatasetRefused(str(exc)) from exc
    upload.seek(0)
    with tempfile.TemporaryFile() as normalised:
        report = inspect_dataset(upload.file, filename, normalised_out=normalised)  # type: ignore[arg-type]
        dataset = Dataset(
            owner=owner,
            name=(name or Path(filename).stem)[:200],
            original_filename=filename[:255],
            format=report.format or Dataset.Format.UNKNOWN,
            rows=report.rows,
            size_bytes=report.size_bytes,
            sha256=report.sha256,
            stats=asdict(report.stats) if report.stats else {},
            preview=report.preview,
            errors=report.as_dict()["errors"],
            error_count=report.error_count,
        )
        upload.seek(0)
        _store_dataset_files(dataset, upload, normalised if report.ok else None)
    return dataset


def _store_dataset_files(
    dataset: Dataset, upload: UploadedFile, normalised: IO[bytes] | None
) -> None:
    """Files first, then the row; if anything fails, no file is left without its row."""
    suffix = Path(dataset.original_filename).suffix.lower()
    try:
        dataset.file.save(f"{dataset.id}{suffix}", upload, save=False)
        if normalised is not None:
            normalised.seek(0)
            dataset.normalized_file.save(f"{dataset.id}.jsonl", File(normalised), save=False)
        dataset.save()
    except Exception:
        for stored in (dataset.file, dataset.normalized_file):
            if stored:
                stored.delete(save=False)
        raise


def delete_dataset(dataset: Dataset) -> None:
    if dataset.jobs.exists():
        raise DatasetRefused("jobs were trained on this dataset; it is kept for their record")
    files = [f for f in (dataset.file, dataset.normalized_file) if f]
    dataset.delete()
    for stored in files:
        stored.delete(save=False)

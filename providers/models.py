"""Provider credentials, encrypted at rest.

The API key is encrypted with Fernet under ``settings.CREDENTIALS_KEY`` (from the environment,
never in code). It is decrypted only in the server's worker, to call the provider; it is never
sent to a pod and never rendered back (the UI shows a masked hint).
"""

from __future__ import annotations

import uuid

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


def _fernet() -> Fernet:
    try:
        return Fernet(settings.CREDENTIALS_KEY.encode())
    except ValueError as exc:
        raise ImproperlyConfigured(
            "CREDENTIALS_KEY is not a valid Fernet key (32 url-safe base64-encoded bytes)"
        ) from exc


class ProviderCredential(models.Model):
    class Kind(models.TextChoices):
        RUNPOD = "runpod", "RunPod"
        LAMBDA = "lambda", "Lambda"
        HUGGINGFACE = "hf", "Hugging Face"
        KAGGLE = "kaggle", "Kaggle"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="credentials"
    )
    provider = models.CharField(max_length=20, choices=Kind.choices)
    secret_encrypted = models.BinaryField()
    # The last four characters, so the page can say which key is stored without showing it.
    hint = models.CharField(max_length=8, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "provider"], name="one_credential_per_provider"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} key …{self.hint}"

    def set_secret(self, secret: str) -> None:
        self.secret_encrypted = _fernet().encrypt(secret.encode())
        self.hint = secret[-4:] if len(secret) >= 8 else ""

    def get_secret(self) -> str:
        try:
            return _fernet().decrypt(bytes(self.secret_encrypted)).decode()
        except InvalidToken as exc:
            raise ImproperlyConfigured(
                "a stored provider key cannot be decrypted: CREDENTIALS_KEY changed"
            ) from exc

"""Provider keys are encrypted at rest with a key from the environment."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from providers.models import ProviderCredential

pytestmark = pytest.mark.django_db

SECRET = "rpa_0123456789abcdefSECRET"


def test_the_key_is_stored_encrypted_and_read_back(owner) -> None:
    credential = ProviderCredential(owner=owner, provider="runpod")
    credential.set_secret(SECRET)
    credential.save()
    stored = ProviderCredential.objects.get(id=credential.id)
    assert SECRET.encode() not in bytes(stored.secret_encrypted)
    assert stored.get_secret() == SECRET
    assert stored.hint == "CRET" and SECRET not in str(stored)


def test_a_changed_encryption_key_is_a_clear_error(owner, settings) -> None:
    credential = ProviderCredential(owner=owner, provider="runpod")
    credential.set_secret(SECRET)
    credential.save()
    settings.CREDENTIALS_KEY = "E5iNhDJQG6XdVqVqXLMkzW0QlGKO1eNEVp-XnnFT-h8="
    with pytest.raises(ImproperlyConfigured, match="CREDENTIALS_KEY changed"):
        ProviderCredential.objects.get(id=credential.id).get_secret()


def test_drf_create_token_makes_an_api_token(owner, capsys) -> None:
    call_command("drf_create_token", owner.username)
    assert "Generated token" in capsys.readouterr().out

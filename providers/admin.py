from __future__ import annotations

from django.contrib import admin

from providers.models import ProviderCredential


@admin.register(ProviderCredential)
class ProviderCredentialAdmin(admin.ModelAdmin):
    list_display = ["owner", "provider", "hint", "updated_at"]
    list_filter = ["provider"]
    # The encrypted secret is never shown, not even as ciphertext.
    exclude = ["secret_encrypted"]
    readonly_fields = ["hint"]

"""``POST /api/estimate``: for a config, which offers fit, how long and how much (DESIGN §7).

Static catalogue prices, refreshed with the user's own RunPod key when one is stored (cached
for a few minutes: the catalogue call costs a round trip and prices move slowly).
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import services
from jobs.api.serializers import config_errors_as_drf
from jobs.api.views import owner_of
from jobs.training_config import ConfigError, validate_config
from providers.base import GpuOffer, ProviderError
from providers.catalog import merged_offers, scaled, static_offers
from providers.config import provider_settings
from providers.estimate import OfferEstimate, estimate
from providers.models import ProviderCredential
from providers.registry import get_provider

LIVE_PRICES_TTL_S = 300
# Offers a job can be launched on today; the others (lambda, hf, kaggle) would be marked
# cheapest without being launchable.
LAUNCHABLE_PROVIDERS = ("runpod",)
# Without a dataset the estimate assumes this many training tokens (shown in the answer).
DEFAULT_DATASET_TOKENS = 1_000_000


class EstimateRequest(serializers.Serializer[Any]):
    config = serializers.DictField()
    dataset_id = serializers.UUIDField(required=False, allow_null=True)
    gpu_count = serializers.IntegerField(min_value=1, max_value=8, default=1)


class EstimateView(APIView):
    @extend_schema(request=EstimateRequest, responses=dict)
    def post(self, request: Request) -> Response:
        query = EstimateRequest(data=request.data)
        query.is_valid(raise_exception=True)
        values = query.validated_data
        try:
            config = validate_config(values["config"], require_dataset=False).as_dict()
        except ConfigError as exc:
            raise config_errors_as_drf(exc) from exc
        tokens, rows = DEFAULT_DATASET_TOKENS, None
        if values.get("dataset_id"):
            dataset = services.get_dataset_for_user(owner_of(request), values["dataset_id"])
            if dataset is None:
                raise ValidationError({"dataset_id": ["no such dataset"]})
            tokens, rows = dataset.stats.get("approx_tokens_total") or tokens, dataset.rows
        offers = [scaled(o, values["gpu_count"]) for o in _offers(request)]
        result = estimate(config, tokens, offers, dataset_rows=rows)
        return Response(
            {
                "model_params": result.model.params,
                "model_size_source": result.model.source,
                "dataset_tokens": tokens,
                "train_tokens": result.train_tokens,
                "offers": [_row(o) for o in result.offers],
            }
        )


def _offers(request: Request) -> list[GpuOffer]:
    offers = [o for o in static_offers() if o.provider in LAUNCHABLE_PROVIDERS]
    # This machine, as the local provider sees it (its GPU, or its memory when it has none).
    offers += get_provider("local", {}, provider_settings()).offers()
    credential = ProviderCredential.objects.filter(
        owner=owner_of(request), provider=ProviderCredential.Kind.RUNPOD
    ).first()
    if credential is not None:
        offers = merged_offers(offers, _live_runpod_offers(credential))
    return offers


def _live_runpod_offers(credential: ProviderCredential) -> list[GpuOffer]:
    key = f"runpod-offers:{credential.pk}:{credential.updated_at.timestamp()}"
    cached = cache.get(key)
    if cached is not None:
        return [GpuOffer(**row) for row in cached]
    try:
        client = get_provider("runpod", {"api_key": credential.get_secret()}, provider_settings())
        live = client.offers()
    except ProviderError:
        return []
    cache.set(key, [o.__dict__ for o in live], LIVE_PRICES_TTL_S)
    return live


def _row(row: OfferEstimate) -> dict[str, Any]:
    offer = row.offer
    return {
        "provider": offer.provider,
        "gpu_type": offer.gpu_type,
        "display_name": offer.display_name,
        "gpu_count": offer.gpu_count,
        "vram_gb": offer.vram_gb,
        "price_per_hour": offer.price_per_hour,
        "available": offer.available,
        "fits": row.fits,
        "memory_gb": row.memory_needed_gib,
        "hours": row.hours,
        "cost": row.dollars,
        "cheapest": row.cheapest,
        "note": row.note,
    }

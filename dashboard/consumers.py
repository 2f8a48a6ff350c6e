"""The live view's websocket: one group per job (DESIGN §6, STYLE 6)."""

from __future__ import annotations

import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from jobs.live import LiveUpdate, job_group
from jobs.models import TrainingJob


class JobConsumer(AsyncJsonWebsocketConsumer):
    """Sends a job's ``job.update`` messages to its owner's page; read-only."""

    group: str = ""

    async def connect(self) -> None:
        user = self.scope.get("user")
        job_id = self.scope["url_route"]["kwargs"]["job_id"]
        if user is None or not user.is_authenticated or not await _owns(user.pk, job_id):
            # 4404 rather than 403: an outsider learns nothing about whether the job exists.
            await self.close(code=4404)
            return
        self.group = job_group(job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The page only listens; history and commands go through the REST API.
        return None

    async def job_update(self, message: LiveUpdate) -> None:
        await self.send_json(message)


@database_sync_to_async
def _owns(user_id: int, job_id: uuid.UUID) -> bool:
    return TrainingJob.objects.filter(id=job_id, owner_id=user_id).exists()

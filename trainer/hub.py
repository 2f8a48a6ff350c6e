"""Model card and upload of the adapter to a private Hugging Face repo."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CardFacts:
    base_model: str
    dataset_sha256: str
    method: str
    final_loss: float | None
    runtime_s: float
    cost: str


def model_card(facts: CardFacts, config: dict[str, Any]) -> str:
    hyper = json.dumps(config["training"], indent=2, sort_keys=True)
    loss = f"{facts.final_loss:.4f}" if facts.final_loss is not None else "n/a"
    return f"""---
base_model: {facts.base_model}
library_name: peft
tags: [tuneboard, lora, {facts.method}]
---

# {config.get("name", "tuneboard fine-tune")}

LoRA adapter trained with Tuneboard ({facts.method.upper()}).

| | |
| --- | --- |
| Base model | `{facts.base_model}` |
| Dataset sha256 | `{facts.dataset_sha256}` |
| Final training loss | {loss} |
| Runtime | {facts.runtime_s:.0f} s |
| Cost so far | {facts.cost} |

## Hyper-parameters

```json
{hyper}
```
"""


def push_adapter(folder: Path, repo_id: str, token: str) -> str:
    """Create the private repo if needed and upload the adapter folder; returns the repo URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=True, exist_ok=True, repo_type="model")
    api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="model",
        commit_message="Tuneboard: upload LoRA adapter",
    )
    return str(url)

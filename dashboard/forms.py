"""Forms of the browser pages, and the field layout of the new fine-tune page.

The fine-tune form is posted as JSON to ``/api/configs`` by its page module, so it is described
here as data (one :class:`ConfigField` per config path of docs/contracts.md §1) rather than as a
Django form: the API is the single validator and its errors come back keyed by these paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User

from jobs import training_config as tc
from providers.models import ProviderCredential

# Used until a per-user default budget can be stored (docs/requests-from-dashboard.md).
DEFAULT_BUDGET = Decimal("10.00")
DEFAULT_ALERT_THRESHOLD = Decimal("0.8")


@dataclass(frozen=True)
class ConfigField:
    path: str
    label: str
    kind: str = "number"  # number | int | text | bool | choice | nullable_int | modules
    choices: tuple[str, ...] = ()
    help: str = ""
    step: str = "any"

    @property
    def dom_id(self) -> str:
        return "f-" + self.path.replace(".", "-")


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    fields: list[ConfigField] = field(default_factory=list)
    advanced: bool = False


def _f(path: str, label: str, kind: str = "number", **kw: Any) -> ConfigField:
    return ConfigField(path, label, kind, **kw)


CONFIG_SECTIONS: list[Section] = [
    Section(
        "training",
        "Training",
        [
            _f("training.num_epochs", "Epochs"),
            _f("training.max_steps", "Max steps", "int", help="-1 = run the epochs"),
            _f("training.learning_rate", "Learning rate"),
            _f("training.batch_size", "Batch size", "int"),
            _f("training.gradient_accumulation_steps", "Gradient accumulation", "int"),
            _f("training.warmup_steps", "Warm-up steps", "int"),
            _f("training.weight_decay", "Weight decay"),
            _f("training.optim", "Optimizer", "choice", choices=tc.OPTIMIZERS),
            _f("training.beta", "Beta (DPO / ORPO)", help="used by DPO and ORPO only"),
            _f("training.logging_steps", "Log every (steps)", "int"),
            _f(
                "training.eval_steps",
                "Evaluate every (steps)",
                "nullable_int",
                help="empty = epoch",
            ),
            _f("training.save_steps", "Save every (steps)", "nullable_int", help="empty = end"),
            _f("training.seed", "Seed", "int"),
            _f("training.gradient_checkpointing", "Gradient checkpointing", "bool"),
            _f("training.packing", "Packing (SFT)", "bool"),
            _f("training.bf16", "bf16", "bool"),
            _f("training.fp16", "fp16", "bool"),
        ],
    ),
    Section(
        "data",
        "Data",
        [
            _f("data.eval_split", "Eval split", help="fraction held out, 0 to 0.5"),
            _f("data.max_samples", "Max samples", "nullable_int", help="empty = all rows"),
            _f("data.max_seq_length", "Max sequence length", "int"),
        ],
    ),
    Section(
        "lora",
        "LoRA",
        [
            _f("training.lora_r", "Rank r", "int"),
            _f("training.lora_alpha", "Alpha"),
            _f("training.lora_dropout", "Dropout"),
            _f(
                "training.lora_target_modules",
                "Target modules",
                "modules",
                help="empty = per architecture; all-linear; or q_proj, v_proj",
            ),
        ],
    ),
    Section(
        "quantization",
        "Quantization",
        [
            _f("training.quantization.load_in_4bit", "Load in 4-bit (QLoRA)", "bool"),
            _f("training.quantization.load_in_8bit", "Load in 8-bit", "bool"),
            _f(
                "training.quantization.bnb_4bit_quant_type",
                "4-bit type",
                "choice",
                choices=tc.QUANT_TYPES,
            ),
            _f(
                "training.quantization.bnb_4bit_compute_dtype",
                "Compute dtype",
                "choice",
                choices=tc.COMPUTE_DTYPES,
            ),
            _f("training.quantization.bnb_4bit_use_double_quant", "Double quantization", "bool"),
        ],
    ),
    Section(
        "predictions",
        "Prediction sampling",
        [
            _f("predictions.enabled", "Sample predictions", "bool"),
            _f("predictions.sample_count", "Samples", "int"),
            _f(
                "predictions.sample_frequency",
                "When",
                "choice",
                choices=tc.SAMPLE_FREQUENCIES,
            ),
            _f("predictions.step_interval", "Every (steps)", "int", help="when = steps"),
            _f("predictions.max_new_tokens", "Max new tokens", "int"),
            _f("predictions.temperature", "Temperature"),
            _f("predictions.top_p", "Top p"),
        ],
    ),
    Section(
        "model",
        "Model loading",
        [
            _f("model.torch_dtype", "Weights dtype", "choice", choices=tc.TORCH_DTYPES),
            _f("model.device_map", "Device map", "text"),
            _f("model.trust_remote_code", "Trust remote code", "bool"),
        ],
        advanced=True,
    ),
]

# Presets only set what differs from the defaults; the page applies them over the form.
PRESETS: dict[str, dict[str, Any]] = {
    "small": {
        "label": "Small model, full precision LoRA",
        "values": {
            "model.name": "HuggingFaceTB/SmolLM2-135M",
            "training.batch_size": 8,
            "training.learning_rate": 0.0002,
            "training.lora_r": 16,
            "training.lora_alpha": 32,
            "training.quantization.load_in_4bit": False,
            "training.gradient_checkpointing": False,
        },
    },
    "qlora": {
        "label": "Large model, QLoRA (4-bit)",
        "values": {
            "model.name": "meta-llama/Llama-3.1-8B",
            "training.batch_size": 2,
            "training.gradient_accumulation_steps": 8,
            "training.learning_rate": 0.0001,
            "training.lora_r": 64,
            "training.lora_alpha": 16,
            "training.lora_target_modules": "all-linear",
            "training.quantization.load_in_4bit": True,
            "training.quantization.bnb_4bit_quant_type": "nf4",
            "training.gradient_checkpointing": True,
            "training.bf16": True,
        },
    },
}


class SetupForm(UserCreationForm[User]):
    """The first account of an install; it becomes the administrator."""

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username",)


class CredentialForm(forms.Form):
    provider = forms.ChoiceField(choices=ProviderCredential.Kind.choices)
    api_key = forms.CharField(
        label="API key",
        max_length=500,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        strip=True,
    )


class DefaultBudgetForm(forms.Form):
    budget = forms.DecimalField(
        label="Default budget (USD)", min_value=Decimal("0.01"), max_digits=10, decimal_places=2
    )
    alert_threshold = forms.DecimalField(
        label="Alert at (fraction of budget)",
        min_value=Decimal("0.05"),
        max_value=Decimal("1"),
        max_digits=4,
        decimal_places=3,
    )

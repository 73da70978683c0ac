"""The spec's ``cost`` section: prices for measured resources, or the metric a trial reports its cost in."""

from __future__ import annotations

from pydantic import Field, model_validator

from tunesmith.cost import Prices
from tunesmith.strict_model import StrictFloat, StrictModel


class CostConfig(StrictModel):
    cpu_hour: StrictFloat = Field(default=0.0, ge=0, description="price of one CPU-hour of the trial's process tree")
    gpu_hour: StrictFloat = Field(default=0.0, ge=0, description="price of one GPU-hour of each GPU assigned")
    memory_gb_hour: StrictFloat = Field(default=0.0, ge=0,
                                        description="price of one GiB of peak memory held for an hour")
    gpus: StrictFloat | None = Field(default=None, ge=0, description=(
        "GPUs per trial; default: those in a command trial's trial.env CUDA_VISIBLE_DEVICES, else what the executor "
        "assigns (executor.gpu_per_trial with executor.gpus, or resources_per_trial.gpu on Ray)"))
    metric: str | None = Field(default=None, min_length=1, description="the trial reports its cost in this metric")

    @model_validator(mode="after")
    def _something_priced(self) -> CostConfig:
        if self.metric is None and not (self.cpu_hour or self.gpu_hour or self.memory_gb_hour):
            raise ValueError("give prices (cpu_hour, gpu_hour, memory_gb_hour) or the metric the trial reports its "
                             "cost in (metric: dollars)")
        return self

    def prices(self, trial_env: dict[str, str], executor_gpus: float = 0.0) -> Prices:
        """The prices a job carries; GPUs are those given, else those the trial's own environment names
        (``trial_env``: what the spec adds to it, a command's trial.env), else ``executor_gpus``, the share of GPUs
        the executor assigns each trial."""
        gpus = self.gpus
        if gpus is None:
            visible = trial_env.get("CUDA_VISIBLE_DEVICES", "").strip()
            gpus = len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"]) if visible else 0
            gpus = gpus or executor_gpus
        return Prices(self.cpu_hour, self.gpu_hour, self.memory_gb_hour, float(gpus), self.metric)

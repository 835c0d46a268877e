"""The one typed config tree of glocal: a frozen dataclass per section.

Each section is owned by the component that reads it and defined next to it; this module only
assembles the root. Presets in ``presets/*.yaml`` override defaults; ``--set a.b=c`` overrides
presets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from glocal_cli.body.config import BodyConfig
from glocal_cli.data.config import DataConfig
from glocal_cli.infer.config import InferConfig
from glocal_cli.metrics.config import EvalConfig
from glocal_cli.models.config import LossConfig, ModelConfig
from glocal_cli.serve.config import ServeConfig
from glocal_cli.train.config import TrainConfig


@dataclass(frozen=True)
class GLocalConfig:
    """Root of the config tree."""

    data: DataConfig = field(default_factory=DataConfig)
    """Image frame, pose maps and data loading."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Architecture of the GLocal networks."""
    loss: LossConfig = field(default_factory=LossConfig)
    """Loss weights and options (Eq. 1, 9-12)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Training schedule, optimisation, checkpoints and logging."""
    infer: InferConfig = field(default_factory=InferConfig)
    """Inference pipelines."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation."""
    serve: ServeConfig = field(default_factory=ServeConfig)
    """The local web server (glocal serve)."""
    body: BodyConfig = field(default_factory=BodyConfig)
    """The 3D body model: fitting, rendering and correspondence (--flow body3d, --correspondence body3d)."""

"""Settings of ``adacompress experiment scenery`` (light to import: no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field

from adacompress.device.zoo import AgentChoice
from adacompress.exchange.settings import CloudSettings
from adacompress.runtime.settings import RuntimeSettings


@dataclass
class ScenerySettings:
    """Settings of ``adacompress experiment scenery``."""

    cloud: CloudSettings = field(default_factory=CloudSettings)
    """the cloud"""
    choice: AgentChoice = field(default_factory=AgentChoice)
    """the starting agent (default: the day-trained agent shipped for the backend)"""
    preset: str = "default"
    """runtime constants: default (ours) or paper (the authors')"""
    day: str | None = None
    """folder of day photos (default: the 300 held-out test images)"""
    night: str | None = None
    """folder of night photos (default: the day images through the night simulation)"""
    day_passes: int = 2
    """passes over the day images before the change"""
    night_passes: int = 4
    """passes over the night images"""
    after_passes: int = 2
    """passes over the day images after the night"""
    seed: int = 0
    """seed of the reshuffles"""
    json: str | None = None
    """write the report here"""
    plot: str | None = None
    """write the plot here (default: beside --json)"""
    state: str | None = None
    """keep the run's state here (default: a temporary folder, a fresh run)"""
    progress: bool = True
    """show a progress bar"""
    runtime: RuntimeSettings | None = None
    """the loop's constants (default: the preset's)"""

"""The model: the selective scan (``ops``), the Mamba layer and the signal classifier built from it
(``models``)."""

from runtime.nn.models.signal import Mamba, SignalMamba, build_model, parameter_count
from runtime.nn.ops.scan import FusedKernelsUnavailable

__all__ = ["FusedKernelsUnavailable", "Mamba", "SignalMamba", "build_model", "parameter_count"]

"""The model, in mamba-ssm's layout: the selective scan (``ops``), the Mamba block (``modules``), the
signal classifier built from it (``models``), and the torch-free
:class:`~runtime.nn.config.ModelConfig` (``config``).

Import the submodules; this package imports nothing, so ``runtime.nn.config`` loads without torch.
"""

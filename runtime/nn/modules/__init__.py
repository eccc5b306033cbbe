"""Layers built on the scan: mamba-ssm's ``Mamba`` block (:mod:`runtime.nn.modules.mamba`)."""

"""Tensor operations of the model: the selective scan."""

"""mtc runtime: the Mamba model, data, training and evaluation code the generated Modal functions run.

Never imports modal or compiler: it ships alone into the Modal image.
"""

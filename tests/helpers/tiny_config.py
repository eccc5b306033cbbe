"""The smallest training config that still trains, evaluates and checkpoints: end-to-end tests run it in
seconds on the synthetic task."""

TINY_CONFIG = """\
run_name: tiny
output_dir: /results/runs
data:
  format: synthetic
  cache_dir: /results/cache
  synthetic: {n_train: 64, n_val: 32, n_test: 32, channels: 2, length: 32}
  loader: {batch_size: 16, num_workers: 0}
model: {d_model: 8, n_layers: 1, d_state: 4, downsample: 2}
optim: {warmup_steps: 1}
train: {epochs: 2, log_every: 1, checkpoint_every: 2}
"""

# ruff: noqa: E501
"""The JSON Schema of training configs (``specs/train.yaml``), held in Python source.

The runtime ships to Modal with ``Image.add_local_python_source("runtime")``, which copies only ``.py``
files, so a ``.json`` beside this module would not reach the container. Holding the schema's text here ships
it with the code and loads it by import, with no file lookup, in a checkout, an installed wheel or a
container. The compiler's lint reads the same object. ``specs/schema/train.schema.json`` is the copy that
editors point at; a test keeps the two equal, and ``mtc schema --training > specs/schema/train.schema.json``
rewrites it after an edit here.
"""

import json

TEXT = r"""{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://mtc.local/schema/train.schema.json",
  "title": "mtc training config",
  "description": "What to train and how: data, model, optimiser, loop, where results go. No CPU, RAM or GPU settings: those belong to deployment.yaml.",
  "type": "object",
  "additionalProperties": false,
  "required": ["data", "output_dir"],
  "properties": {
    "run_name": {
      "type": "string",
      "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$",
      "x-expected": "a run name of letters, digits, '.', '_' and '-'",
      "default": "default",
      "description": "The run directory is output_dir/run_name; a restarted run finds its checkpoints there."
    },
    "output_dir": {"type": "string", "minLength": 1, "description": "Folder holding run directories (e.g. /results/runs)."},
    "data": {"$ref": "#/$defs/data"},
    "model": {"$ref": "#/$defs/model", "default": {}},
    "optim": {"$ref": "#/$defs/optim", "default": {}},
    "train": {"$ref": "#/$defs/train", "default": {}},
    "evaluate": {"$ref": "#/$defs/evaluate", "default": {}}
  },
  "$defs": {
    "data": {
      "type": "object",
      "additionalProperties": false,
      "required": ["format"],
      "properties": {
        "format": {"enum": ["npz", "ts", "synthetic", "edf"], "description": "npz: a folder of *.npz files; ts: UEA/UCR .ts files; synthetic: generated EEG-like windows; edf: a folder of EDF/EDF+ recordings with event annotations, cut into windows as data.edf says."},
        "train": {"type": "string", "minLength": 1, "description": "npz: a folder (optionally with manifest.json) or one file; ts: a .ts file; edf: a folder of *.edf recordings (searched recursively)."},
        "val": {"type": "string", "minLength": 1},
        "test": {"type": "string", "minLength": 1},
        "val_fraction": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "default": 0.1,
                         "description": "Share of train held out when no val split is given: stratified by class, grouped by recording (see split_by), drawn from train.seed, recorded in the run directory as split.json."},
        "split_by": {"enum": ["auto", "group", "window"], "default": "auto",
                     "description": "How the val hold-out keeps recordings apart. group: no recording on both sides (recordings are the npz files' 'groups'/'recording' arrays, the manifest's 'groups' map, else one per npz file); window: windows drawn one by one; auto: group when the data names at least two recordings, else window."},
        "length_policy": {"enum": ["pad", "crop", "resample"], "default": "pad",
                          "description": "Series of unequal lengths: pad (to the split's longest, with a mask so padding counts in no loss, metric or statistic), crop (longer series keep their first `length` steps, shorter ones are padded), resample (linear interpolation to `length` steps)."},
        "length": {"type": "integer", "minimum": 1, "description": "The series length for length_policy crop or resample."},
        "normalize": {"enum": ["channel", "window", "none"], "default": "channel",
                      "description": "channel: per-channel mean and standard deviation of the training split, stored in the checkpoint and applied by every consumer of it; window: each window's own per-channel statistics; none: raw values."},
        "cache_dir": {"type": "string", "minLength": 1, "default": ".cache/mtc",
                      "description": "Where each split is converted to one memory-mapped array (on Modal: the results volume)."},
        "nonfinite": {"enum": ["drop", "zero", "error"], "default": "drop",
                      "description": "What to do with windows holding NaN/Inf values: drop the window, set the values to 0, or stop."},
        "in_memory": {
          "oneOf": [
            {"type": "boolean"},
            {"type": "array", "items": {"enum": ["train", "val", "test"]}, "uniqueItems": true}
          ],
          "default": false,
          "x-expected": "true, false, or a list of splits (train, val, test)",
          "description": "Splits to copy from the memory-mapped cache into RAM; mtc lint checks they fit in the function's memory."
        },
        "sample_rate_hz": {"type": "number", "exclusiveMinimum": 0, "default": 256,
                           "description": "Samples per second; used to turn timesteps into hours for false alarms per 24 h. edf: every channel is resampled to this rate."},
        "edf": {"$ref": "#/$defs/edf"},
        "synthetic": {"$ref": "#/$defs/synthetic", "default": {}},
        "loader": {"$ref": "#/$defs/loader", "default": {}}
      }
    },
    "edf": {
      "type": "object",
      "additionalProperties": false,
      "description": "format edf: which channels to read from each recording, how to filter and cut it into windows, and where its labels come from. Required with format edf.",
      "properties": {
        "channels": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "uniqueItems": true,
                     "description": "The channels of each window, in order, by name: 'Fp1' matches 'EEG FP1-REF', 'FP1-LE', 'fp1' (case, an 'EEG ' prefix and a -REF/-LE/-AR/-AVG suffix are ignored). Give this or montage."},
        "montage": {"type": "array", "minItems": 1,
                    "items": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 2, "maxItems": 2},
                    "x-expected": "a list of channel pairs, as in [[Fp1, F7], [F7, T3]]",
                    "description": "A bipolar montage: each window channel is the first channel minus the second, names matched as for channels. Give this or channels."},
        "aliases": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
                    "default": {},
                    "x-expected": "a map from a channel name to other names it may have, as in {T3: [T7]}",
                    "description": "Other names a channel may carry in some recordings (e.g. the old 10-20 T3 and the new T7); the first name found is read."},
        "window_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 60, "description": "Length of each window."},
        "stride_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 10,
                           "description": "Seconds between window starts; a recording's tail shorter than a window is dropped."},
        "filters": {
          "type": "object",
          "additionalProperties": false,
          "default": {},
          "description": "Zero-phase filters (scipy.signal, applied forwards and backwards) after resampling.",
          "properties": {
            "bandpass": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 2, "maxItems": 2,
                         "x-expected": "[low, high] in Hz, as in [0.5, 120]",
                         "description": "A 4th-order Butterworth band-pass [low, high] in Hz; high must lie below half of sample_rate_hz."},
            "notch": {"type": "number", "exclusiveMinimum": 0, "description": "Remove this mains frequency in Hz (50 or 60) with a notch filter of quality 30."}
          }
        },
        "annotations": {
          "type": "object",
          "additionalProperties": false,
          "default": {},
          "properties": {
            "kind": {"enum": ["auto", "csv", "edf+"], "default": "auto",
                     "description": "csv: events in <recording>.csv_bi (or .csv) beside each recording, columns channel,start_time,stop_time,label,confidence as in the TUH seizure corpus, '#' comment lines allowed; edf+: the recording's own EDF+ annotations; auto: the CSV file when there is one, else the EDF+ annotations."},
            "label_map": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 255}, "default": {"seiz": 1},
                          "x-expected": "a map from an annotation label to a class index, as in {seiz: 1, bckg: 0}",
                          "description": "Class of each annotation label (case-insensitive). A CSV label missing from the map is an error (a typo would leave events unlabelled); EDF+ annotations are free text, so unmapped ones are ignored."},
            "default_label": {"type": "integer", "minimum": 0, "maximum": 255, "default": 0, "description": "Class of the timesteps no event covers. Overlapping events: the higher class wins."}
          }
        },
        "unreadable": {"enum": ["skip", "error"], "default": "error",
                       "description": "A recording that cannot be used (unreadable file, a missing channel, a bad annotation file): error stops the conversion naming it; skip reports it with its path and reason and goes on without it."},
        "workers": {"oneOf": [{"type": "integer", "minimum": 1}, {"const": "auto"}], "default": "auto",
                    "x-expected": "a number of processes (1 or more) or 'auto'",
                    "description": "Processes converting recordings at once; auto: the CPUs this container may use (its CPU affinity and cgroup quota, i.e. the function's declared cpu)."}
      }
    },
    "synthetic": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "n_train": {"type": "integer", "minimum": 1, "default": 2048},
        "n_val": {"type": "integer", "minimum": 1, "default": 512},
        "n_test": {"type": "integer", "minimum": 1, "default": 512},
        "channels": {"type": "integer", "minimum": 1, "default": 4},
        "length": {"type": "integer", "minimum": 16, "default": 256},
        "num_classes": {"type": "integer", "minimum": 2, "maximum": 8, "default": 2,
                        "description": "Class 0 is background; class k > 0 is a burst of the k-th rhythm."},
        "labels": {"enum": ["window", "timestep"], "default": "window"},
        "burst_fraction": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "default": 0.5},
        "burst_snr": {"type": "number", "exclusiveMinimum": 0, "default": 1.0,
                      "description": "Burst amplitude relative to the background's standard deviation."},
        "seed": {"type": "integer", "minimum": 0, "default": 1234}
      }
    },
    "loader": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "batch_size": {"type": "integer", "minimum": 1, "default": 32},
        "eval_batch_size": {"type": "integer", "minimum": 1, "description": "Defaults to 2 x batch_size."},
        "num_workers": {"type": "integer", "minimum": 0, "maximum": 64, "default": 0},
        "pin_memory": {"type": "boolean", "default": true, "description": "Only takes effect on a GPU."},
        "persistent_workers": {"type": "boolean", "default": true, "description": "Only takes effect with num_workers > 0."},
        "prefetch_factor": {"type": "integer", "minimum": 1, "default": 4, "description": "Batches each worker keeps ready."}
      }
    },
    "model": {
      "type": "object",
      "additionalProperties": false,
      "description": "Keyword arguments of runtime.nn.models.signal.SignalMamba.",
      "properties": {
        "head": {"enum": ["auto", "window", "timestep"], "default": "auto",
                 "description": "auto: window for per-window labels, timestep for per-timestep labels."},
        "d_model": {"type": "integer", "minimum": 1, "default": 64},
        "n_layers": {"type": "integer", "minimum": 1, "default": 2},
        "d_state": {"type": "integer", "minimum": 1, "default": 16},
        "d_conv": {"type": "integer", "minimum": 1, "default": 4},
        "expand": {"type": "integer", "minimum": 1, "default": 2},
        "downsample": {"type": "integer", "minimum": 1, "default": 4},
        "bidirectional": {"type": "boolean", "default": false},
        "dropout": {"type": "number", "minimum": 0, "maximum": 1, "exclusiveMaximum": 1, "default": 0.0},
        "kernels": {"enum": ["auto", "fused", "torch"], "default": "auto",
                    "description": "auto: mamba-ssm's fused CUDA kernels on a GPU (an error when missing or broken) and the PyTorch scan on CPU; fused: always the CUDA kernels; torch: always the PyTorch scan (slower on a GPU; for diagnosis)."}
      }
    },
    "optim": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "lr": {"type": "number", "exclusiveMinimum": 0, "default": 0.001},
        "weight_decay": {"type": "number", "minimum": 0, "default": 0.01},
        "betas": {"type": "array", "items": {"type": "number", "minimum": 0, "exclusiveMaximum": 1}, "minItems": 2, "maxItems": 2, "default": [0.9, 0.999]},
        "eps": {"type": "number", "exclusiveMinimum": 0, "default": 1e-8},
        "warmup_steps": {"type": "integer", "minimum": 0, "default": 100,
                         "description": "Linear warm-up before the cosine decay; capped at 10% of the run's steps (train says so)."},
        "min_lr_ratio": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.05,
                         "description": "The cosine schedule ends at lr x min_lr_ratio."},
        "grad_clip": {"type": "number", "minimum": 0, "default": 1.0, "description": "Max global gradient norm; 0 turns clipping off."}
      }
    },
    "train": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "epochs": {"type": ["integer", "string"], "minimum": 1, "pattern": "^auto$", "default": "auto",
                   "x-expected": "a number of epochs (1 or more) or 'auto'",
                   "description": "auto: enough epochs for min_steps optimiser steps, and at least 10; early stopping ends a large run sooner."},
        "min_steps": {"type": "integer", "minimum": 1, "default": 1000,
                      "description": "With epochs: auto, train at least this many optimiser steps (a small dataset gets many epochs)."},
        "max_steps": {"type": "integer", "minimum": 1, "description": "Stop after this many optimiser steps, even mid-epoch."},
        "precision": {"enum": ["auto", "fp32", "bf16", "fp16"], "default": "auto",
                      "description": "auto: bf16 on Ampere or newer GPUs, fp16 with GradScaler on older GPUs, fp32 on CPU."},
        "seed": {"type": "integer", "minimum": 0, "default": 0},
        "log_every": {"type": "integer", "minimum": 1, "default": 50, "description": "Steps between metrics.jsonl lines."},
        "eval_every": {"type": ["integer", "string"], "minimum": 0, "pattern": "^auto$", "default": "auto",
                       "x-expected": "a number of steps (0: each epoch end) or 'auto'",
                       "description": "Steps between validations (each writes a checkpoint; there is always one at the end); 0: each epoch end; auto: each epoch end, or every few epochs so that a run has at most 100."},
        "checkpoint_every": {"type": "integer", "minimum": 0, "default": 500, "description": "Steps between checkpoints; 0: at each epoch end only."},
        "early_stopping": {
          "type": "object",
          "additionalProperties": false,
          "default": {},
          "properties": {
            "metric": {"enum": ["val_loss", "val_accuracy", "val_balanced_accuracy", "val_macro_f1", "val_auroc", "val_auprc"], "default": "val_loss"},
            "patience": {"type": "integer", "minimum": 0, "default": 20, "description": "Validations without improvement before stopping (with eval_every auto a run has at most 100); 0 never stops early."}
          }
        },
        "loss": {
          "type": "object",
          "additionalProperties": false,
          "default": {},
          "properties": {
            "kind": {"enum": ["cross_entropy", "focal"], "default": "cross_entropy"},
            "class_weights": {
              "oneOf": [
                {"enum": ["none", "balanced"]},
                {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 2}
              ],
              "default": "balanced",
              "x-expected": "'none', 'balanced' (inverse class frequency in train) or a list of positive weights, one per class"
            },
            "focal_gamma": {"type": "number", "minimum": 0, "default": 2.0},
            "label_smoothing": {"type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": 0.0}
          }
        }
      }
    },
    "evaluate": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "split": {"enum": ["auto", "val", "test"], "default": "auto", "description": "auto: test when the data has one, else val."},
        "thresholds": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}, "minItems": 1, "default": [0.5, 0.7, 0.9],
                       "description": "Detection thresholds for event sensitivity and false alarms per 24 h (per-timestep binary labels)."},
        "fa_per_24h_targets": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "default": [10, 5, 2.5, 1],
                               "description": "Report the best event sensitivity reached at or under each false-alarm rate."}
      }
    }
  }
}
"""

SCHEMA: dict = json.loads(TEXT)  # read-only: validators and fill_defaults never change it

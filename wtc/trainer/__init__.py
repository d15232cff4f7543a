"""The trainer: one config, one general loop (`fit`), checkpoints that resume bit-exactly.

    config.py       TrainConfig (data + optimizer + runtime options), TrainResult
    loop.py         fit: the loop every caller reuses; param_groups, lr_factor, fused_sgd
    hooks.py        TrainHooks: how a method customises fit (AutoSlim, DMCP, MorphNet)
    state.py        checkpoints, RNG state, seed_everything
    resume.py       fit_or_resume: a finished fit read back, an unfinished one continued
    distributed.py  device choice, torchrun/DDP, BN-statistics and RNG sync over ranks
    evaluation.py   evaluate (top-1, loss) in a run's precision, forward MACs by torch's counter
    precision.py    Runtime: precision (autocast dtype) and channels_last; what `auto` means here
    compiled.py     compile: whether the training forward runs through torch.compile (auto: off)
    progress.py     rich bar / plain lines / silence
    run.py          train (the `wtc train` entry: spec + widths + config -> run dir),
                    evaluate_checkpoint

The public call is `wtc.train(...)` (this package is deliberately not named `train`).
"""

from wtc.trainer.config import TrainConfig, TrainResult
from wtc.trainer.distributed import dist_info, resolve_device, set_process_threads
from wtc.trainer.evaluation import evaluate, forward_macs, torch_forward_macs
from wtc.trainer.hooks import TrainHooks
from wtc.trainer.loop import fit, lr_factor, param_groups
from wtc.trainer.precision import FP32, PRECISIONS, Runtime, resolve_runtime
from wtc.trainer.resume import finished_fit, fit_or_resume
from wtc.trainer.run import evaluate_checkpoint, train
from wtc.trainer.state import (
    CHECKPOINT,
    CHECKPOINT_FORMAT,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
)

__all__ = [
    "CHECKPOINT",
    "CHECKPOINT_FORMAT",
    "FP32",
    "PRECISIONS",
    "Runtime",
    "TrainConfig",
    "TrainHooks",
    "TrainResult",
    "dist_info",
    "evaluate",
    "evaluate_checkpoint",
    "finished_fit",
    "fit",
    "fit_or_resume",
    "forward_macs",
    "load_checkpoint",
    "lr_factor",
    "param_groups",
    "resolve_device",
    "resolve_runtime",
    "save_checkpoint",
    "seed_everything",
    "set_process_threads",
    "torch_forward_macs",
    "train",
]

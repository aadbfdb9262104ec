r"""Meta-train the LPG update rule (Oh et al. 2020).

  python meta_train.py                                   # the CPU default, minutes
  python meta_train.py --config=paper                    # the paper's sizes (GPU/TPU)
  python meta_train.py --config.lpg.hidden_size=64 --workdir=runs/h64
  python meta_train.py --launcher=ray --config.num_workers=4     # a local Ray cluster
  python meta_train.py --launcher=ray --ray_address=auto         # a running cluster (`ray start`)

Writes to --workdir: metrics.jsonl and TensorBoard events (tb/), meta_train.png,
checkpoints/ (eta, optimiser, every lifetime, RNG; atomic, pickle-free), config.json and,
at the end, an evaluation of the learned rule on the held-out envs (eval/). Re-running
with the same --workdir resumes from the latest checkpoint.
"""

from __future__ import annotations

import os

from absl import app, flags, logging

from environments import registry
from harness import checkpoint, cli
from lpg import program
from lpg.configs import meta_train as meta_train_config
from lpg.launch import local
from lpg.launch import ray as ray_launch

_PROG = "meta_train.py"
_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lpg", "configs", "meta_train.py")
_CONFIG = cli.define_config_file_flag(_PROG, _DEFAULT_CONFIG, variants=meta_train_config.VARIANTS)
_WORKDIR = flags.DEFINE_string("workdir", "runs/meta_train", "Where metrics, checkpoints and plots go.")
_RESUME = flags.DEFINE_bool(
  "resume", True, "Resume from the workdir's latest checkpoint (--noresume refuses a used workdir)."
)
_LAUNCHER = flags.DEFINE_enum(
  "launcher", "local", ["local", "ray"], "Where the program's nodes run: this process, or Ray actors."
)
_RAY_ADDRESS = flags.DEFINE_string(
  "ray_address",
  None,
  "With --launcher=ray: a running cluster to join (auto, HOST:PORT or ray://HOST:PORT); "
  "unset starts a local one.",
)
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")


def run(argv: list[str]) -> None:
  if len(argv) > 1:
    raise program.ConfigError(f"unexpected arguments {argv[1:]}")
  workdir = _WORKDIR.value
  parent = os.path.dirname(os.path.abspath(workdir))
  if (os.path.exists(workdir) and not os.path.isdir(workdir)) or (
    os.path.exists(parent) and not os.path.isdir(parent)
  ):
    raise program.ConfigError(f"--workdir={workdir} is not a directory")
  prog = program.build(_CONFIG.value)
  ckpt_dir = local.checkpoint_dir(_WORKDIR.value)
  if not _RESUME.value and checkpoint.latest(ckpt_dir) is not None:
    raise program.ConfigError(f"--workdir={_WORKDIR.value} holds checkpoints and --noresume was given")
  if _LAUNCHER.value == "ray":
    ray_launch.run(prog, _WORKDIR.value, progress=_PROGRESS.value, address=_RAY_ADDRESS.value)
  else:
    if _RAY_ADDRESS.value is not None:
      raise program.ConfigError("--ray_address needs --launcher=ray")
    local.run(prog, _WORKDIR.value, progress=_PROGRESS.value)
  print(f"done: {_WORKDIR.value}")


def main(argv: list[str]) -> None:
  logging.set_verbosity(logging.WARNING)
  try:
    run(argv)
  except (
    program.ConfigError,
    registry.UnknownEnvironmentError,
    checkpoint.CheckpointError,
    local.ResumeError,
    ray_launch.RayLaunchError,  # cluster, actor or timeout failures
    OSError,  # An unwritable or invalid --workdir.
  ) as e:
    cli.fail(_PROG, str(e))


if __name__ == "__main__":
  app.run(main, flags_parser=cli.flags_parser(_PROG))

"""Ship a meta-trained rule with the package, loadable as --rule=pretrained:NAME.

  python -m lpg.export_rule runs/meta_train --name=default_cpu

Writes DIR/NAME.npz (the rule file: eta, network sizes and provenance, pickle-free; see
`lpg.rule_io`) and DIR/NAME/ with the run's small logs (metrics.jsonl, meta_train.png,
config.json, eval.jsonl, whichever exist). DIR defaults to the package's lpg/pretrained.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys

from harness import checkpoint
from lpg import rule_io

LOGS = ("metrics.jsonl", "meta_train.png", "config.json", "eval.jsonl")


def export(workdir: str, name: str, directory: str | None = None) -> dict:
  """Exports the workdir's latest rule and its logs as DIR/NAME.npz and DIR/NAME/."""
  if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
    raise rule_io.RuleLoadError(f"--name={name!r}: use letters, digits, '_', '.' and '-'")
  if not os.path.isdir(workdir):
    raise rule_io.RuleLoadError(f"{workdir} is not a meta-training workdir")
  directory = directory or rule_io.PRETRAINED_DIR
  os.makedirs(directory, exist_ok=True)
  meta = rule_io.export(workdir, os.path.join(directory, f"{name}.npz"), name)
  logs = os.path.join(directory, name)
  os.makedirs(logs, exist_ok=True)
  for file in LOGS:
    if os.path.exists(os.path.join(workdir, file)):
      shutil.copyfile(os.path.join(workdir, file), os.path.join(logs, file))
  return meta


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m lpg.export_rule", description=__doc__.splitlines()[0])
  parser.add_argument("workdir", help="a meta-training workdir (its latest checkpoint is exported)")
  parser.add_argument("--name", required=True, help="the rule's name: --rule=pretrained:NAME")
  parser.add_argument(
    "--dir", default=rule_io.PRETRAINED_DIR, help="where to write (default: lpg/pretrained)"
  )
  args = parser.parse_args(argv)
  try:
    meta = export(args.workdir, args.name, args.dir)
  except (rule_io.RuleLoadError, checkpoint.CheckpointError, OSError) as e:
    print(f"export_rule: error: {e}", file=sys.stderr)
    return 2
  print(
    f"wrote {os.path.join(args.dir or rule_io.PRETRAINED_DIR, args.name)}.npz: {meta['meta_steps']} meta-steps, "
    f"{meta['env_steps']:,} env steps, {meta['wall_time_s'] / 60:.1f} min on {', '.join(meta['train_envs'])}"
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())

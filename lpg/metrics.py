"""Meta-training metrics: JSONL (always), TensorBoard event files, and a PNG of curves."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any


class MetricsWriter:
  """Appends one JSON object per line to `workdir/metrics.jsonl`, mirrors scalars to
  TensorBoard event files under `workdir/tb`, and plots `workdir/meta_train.png`."""

  def __init__(self, workdir: str, tensorboard: bool = True):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb = None
    if tensorboard:
      from tensorboardX import SummaryWriter

      self._tb = SummaryWriter(os.path.join(workdir, "tb"))

  def write(self, step: int, scalars: Mapping[str, Any]) -> None:
    row = {"meta_step": int(step)}
    for k, v in scalars.items():
      v = float(v)
      row[k] = v if math.isfinite(v) else None
    with open(self.path, "a") as f:
      f.write(json.dumps(row) + "\n")
    if self._tb is not None:
      for k, v in row.items():
        if k != "meta_step" and v is not None:
          self._tb.add_scalar(k, v, step)
      self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def read_jsonl(path: str) -> list[dict[str, Any]]:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def truncate_after(path: str, step: int) -> None:
  """Drops rows after `step` (a resumed run rewrites what the lost work had logged)."""
  rows = [r for r in read_jsonl(path) if r["meta_step"] <= step]
  with open(path, "w") as f:
    for r in rows:
      f.write(json.dumps(r) + "\n")


PLOTTED = (
  ("episode_return", "agents' episode return"),
  ("final_return", "final return of ended lifetimes"),
  ("meta_loss", "meta-loss"),
  ("policy_entropy", "policy entropy (theta_K)"),
)


def plot(path_jsonl: str, path_png: str) -> None:
  """Meta-training curves vs meta-step from the JSONL file."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  rows = read_jsonl(path_jsonl)
  fig, axes = plt.subplots(1, len(PLOTTED), figsize=(4.2 * len(PLOTTED), 3.4))
  for ax, (key, title) in zip(axes, PLOTTED):
    pts = [(r["meta_step"], r[key]) for r in rows if r.get(key) is not None]
    if pts:
      xs, ys = zip(*pts)
      ax.plot(xs, ys, lw=1)
    ax.set_title(title)
    ax.set_xlabel("meta-step")
    ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path_png, dpi=100)
  plt.close(fig)

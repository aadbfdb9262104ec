"""Population workers that fail on purpose (imported by Ray actor processes in tests)."""

import os
import time

from lpg.launch.ray import PopulationWorkerActor


class RaisingWorker(PopulationWorkerActor):
  """Shard 0 raises on its 3rd meta-step; the others work."""

  def __init__(self, config_json, index, count):
    super().__init__(config_json, index, count)
    self._index, self._calls = index, 0

  def step(self, eta_flat, bandits):
    self._calls += 1
    if self._index == 0 and self._calls == 3:
      raise ValueError("injected failure")
    return super().step(eta_flat, bandits)


class HangingWorker(PopulationWorkerActor):
  """Shard 0 never finishes its 1st meta-step."""

  def __init__(self, config_json, index, count):
    super().__init__(config_json, index, count)
    self._index = index

  def step(self, eta_flat, bandits):
    if self._index == 0:
      time.sleep(3600)
    return super().step(eta_flat, bandits)


class LockstepWorker(PopulationWorkerActor):
  """Meta-step k of any shard returns only after every shard has returned step k - 1.

  Async mode then sees all shards' outputs of one round before any of the next, so with
  max_staleness=0 exactly one output per round is fresh (the first) and the rest are stale,
  whatever the compile times. The signal is a file per (shard, step) in $LPG_TEST_LOCKSTEP_DIR.
  """

  def __init__(self, config_json, index, count):
    super().__init__(config_json, index, count)
    self._index, self._count, self._calls = index, count, 0
    self._dir = os.environ["LPG_TEST_LOCKSTEP_DIR"]

  def step(self, eta_flat, bandits):
    self._calls += 1
    out = super().step(eta_flat, bandits)
    if self._calls > 1:
      done = [os.path.join(self._dir, f"{i}_{self._calls - 1}") for i in range(self._count)]
      while not all(os.path.exists(p) for p in done):
        time.sleep(0.05)
      time.sleep(1.0)  # margin for the last shard's step k - 1 to reach the driver after its file
    open(os.path.join(self._dir, f"{self._index}_{self._calls}"), "w").close()
    return out

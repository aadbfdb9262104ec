"""Population workers that fail on purpose (imported by Ray actor processes in tests)."""

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
      import time

      time.sleep(3600)
    return super().step(eta_flat, bandits)

"""Learned Policy Gradient (Oh et al. 2020) in JAX: discover RL update rules."""

from setuptools import find_packages, setup

# Versions known to work together (Python 3.11). jax and dm-haiku are separate
# requirements: `dm-haiku[jax]` silently downgrades haiku. rlax -> distrax pulls an
# unpinned tfp-nightly; it is pinned here.
INSTALL_REQUIRES = [
  "jax==0.10.2",
  "jaxlib==0.10.2",
  "dm-haiku==0.0.17",
  "optax==0.2.8",
  "rlax==0.1.9",
  "distrax==0.1.9",
  "tfp-nightly==0.26.0.dev20261027",
  "chex==0.1.92",
  "dm-env==1.6",
  "dm-tree==0.1.10",
  "ml-collections==1.1.0",
  "absl-py==2.5.1",
  "numpy==2.4.6",
  "matplotlib==3.11.2",
  "tqdm==4.70.1",
  "tensorboardX==2.6.5",
  "protobuf==7.36.2",
  "decorator==5.2.1",
  "gast==0.7.0",
  # Meta-testing on Atari (the ROMs ship inside ale-py) and on Gymnasium envs.
  "ale-py==0.12.1",
  "gymnasium==1.4.0",
  # Offline datasets: minari's HDF5 storage imports pillow, which no minari extra declares.
  "minari[create,hdf5]==0.5.3",
  "h5py==3.16.0",
  "pillow==13.0.0",
]

EXTRAS_REQUIRE = {
  # Kept for compatibility: ale-py and gymnasium are core requirements.
  "atari": [],
  # meta_train.py --launcher=ray (the tests start a local Ray cluster, so dev has it too).
  "ray": ["ray==2.60.0"],
  "dev": [
    "pytest==9.0.3",
    "ruff==0.17.6",
    "ray==2.60.0",
  ],
}

setup(
  name="lpg",
  version="0.1.0",
  description="Learned Policy Gradient: discovering reinforcement-learning update rules in JAX",
  python_requires=">=3.11",
  packages=find_packages(
    include=[
      "environments",
      "environments.*",
      "inner_agents",
      "inner_agents.*",
      "harness",
      "harness.*",
      "lpg",
      "lpg.*",
    ]
  ),
  py_modules=["meta_train", "meta_test"],
  # Rules shipped with the package (--rule=pretrained:NAME) and their training logs.
  package_data={"lpg": ["pretrained/*.npz", "pretrained/*/*"]},
  install_requires=INSTALL_REQUIRES,
  extras_require=EXTRAS_REQUIRE,
)

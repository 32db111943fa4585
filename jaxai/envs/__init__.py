"""Environments for RL tasks: EnvPool pools with a pure, jittable step (see `jaxai.envs.envpool`)."""
from jaxai.envs.envpool import ATARI_DEFAULTS, ATARI_EVAL_DEFAULTS, Env, EnvCarry, Transition, make

__all__ = ["ATARI_DEFAULTS", "ATARI_EVAL_DEFAULTS", "Env", "EnvCarry", "Transition", "make"]

"""Settings every experiment shares; each experiment config starts from `trainer_config()`."""
import ml_collections

from jaxai.core import optim


def trainer_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      seed=0,                        # one seed drives init, data order, augmentation and dropout.
      batch_size=128,                # global batch over all devices and processes.
      num_train_steps=0,             # train steps (state.step); 0 = derive from num_epochs where the task can.
      num_epochs=1.0,                # used when num_train_steps == 0.
      log_every_steps=100,           # console line and metrics.jsonl record of running train means.
      steps_per_call=1,              # train steps per device call (lax.scan over steps): fewer dispatches
                                     # for small models; metrics and the NaN check stay per step.
      unroll_steps=False,            # unroll that scan: faster for convolutions on XLA:CPU, longer compile.
      eval_every_steps=0,            # evaluation cadence; 0 = only at the end.
      checkpoint_every_steps=1000,   # 0 = only at the end.
      keep_checkpoints=3,            # most recent checkpoints kept on disk.
      async_checkpointing=True,      # write checkpoints in the background.
      profile_steps=0,               # >0: record a JAX profiler trace of this many steps into workdir/profile.
      profile_after_steps=5,         # steps of this run to let pass first (compilation, warm-up).
      mesh="data=-1",                # mesh axes 'name=size,...' over all devices; -1 = the rest
                                     # (e.g. 'data=-1,fsdp=2'; see jaxai.core.sharding).
      sharding_rules=(),             # ((leaf-path regex, spec), ...) before the task's own rules.
      init_from=ml_collections.ConfigDict(dict(
          path="",                   # start a fresh run from this run's workdir or checkpoint dir.
          map="",                    # 'src_prefix=dst_prefix,...'; '' = params and model_state.
          fresh="",                  # regex of destination leaves that keep their fresh init
                                     # ('params/Dense_1/.*': a new head); '' = none.
      )),
      optimizer=optim.default_config(),
  ))

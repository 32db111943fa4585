"""Launch any experiment: python -m jaxai.main --config=configs/<experiment>.py[:variant] --workdir=DIR

Override any config key with --config.<key>=<value> (e.g. --config.batch_size=256). A workdir that
already holds checkpoints is resumed from the latest one.
"""
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from jaxai.errors import UserError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file, e.g. configs/mnist_cnn.py:tiny.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for config.json, metrics, TensorBoard events and checkpoints.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0 for a multi-process run (jax.distributed); "
    "leave unset for one process. See launch/local.py.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in a multi-process run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index in [0, num_processes).")
_DISTRIBUTED = flags.DEFINE_enum(
    "distributed", "auto", ["auto", "cluster", "off"],
    "Multi-process start without explicit process flags: 'auto' joins when SLURM or Open MPI launched "
    "several tasks, 'cluster' always asks JAX to detect the cluster (Cloud TPU pods), 'off' never.")
_DISTRIBUTED_TIMEOUT = flags.DEFINE_integer(
    "distributed_timeout_s", 300, "Seconds to wait for the other processes of a multi-process run.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}. Config overrides look like --config.key=value.")
  import jax  # after flag parsing, so --help stays fast.
  from jaxai.core import distributed, logs, trainer
  from jaxai import tasks
  logs.quiet_libraries()
  config = _CONFIG.value
  try:
    if _COORDINATOR.value or _NUM_PROCESSES.value is not None or _PROCESS_ID.value is not None:
      # Before anything touches a JAX backend.
      distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                             _DISTRIBUTED_TIMEOUT.value)
    elif cluster := distributed.initialize_from_environment(_DISTRIBUTED.value, _DISTRIBUTED_TIMEOUT.value):
      logging.info("Joined %s: process %d of %d.", cluster, jax.process_index(), jax.process_count())
    if jax.process_index() != 0:
      logging.set_verbosity(logging.WARNING)  # other processes stay quiet.
    trainer.check_config(config)  # cheap checks first: before loading data or compiling.
    task = tasks.make_task(config)
    _, results = trainer.train_and_evaluate(config, _WORKDIR.value, task)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  summary = "  ".join(f"{k} {v:.4f}" for k, v in sorted(results.items()) if k.startswith("eval/"))
  if "stopped_by" in results:
    logging.info("Stopped by %s at step %d; checkpoint saved.", results["stopped_by"], results["step"])
  else:
    logging.info("Done. %s", summary)


def _parse_flags(argv):
  """absl's parser, with config mistakes (missing file, unknown key, bad variant) reported without a
  traceback."""
  for arg in argv[1:]:
    if arg.startswith("--config=") or arg.startswith("--config "):
      path = arg.split("=", 1)[1].split(":", 1)[0]
      if not os.path.isfile(path):
        sys.exit(f"error: --config={path}: no such file. Configs live in configs/, e.g. "
                 "--config=configs/mnist_cnn.py (add :tiny for a smoke run).")
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    message = str(e)
    if "Traceback" in message:  # an error raised inside get_config: its last line says what.
      message = message.split(":")[0] + ": " + message.strip().splitlines()[-1]
    sys.exit(f"error: {message}\nPass --helpfull to see the flags.")
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    message = str(e).strip("'\"").replace("\\n", " ").replace("\\'", "'").replace("\n", " ")
    sys.exit(f"error: bad --config override: {message}")


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)

"""Joining a multi-process run (`jax.distributed`), with clear errors instead of hangs or aborts.

Three ways in, in order of precedence:
  * explicit: --coordinator_address/--num_processes/--process_id (launch/local.py, launch/gpu_multinode.sh);
  * detected: a SLURM job step or an Open MPI launch with more than one task, where JAX reads the
    coordinator, process count and id from the environment (launch/slurm.sbatch);
  * forced: --distributed=cluster calls `jax.distributed.initialize()` and lets JAX find the cluster
    (Cloud TPU pod slices, where the TPU metadata tells it; launch/tpu_pod.sh).
A single process on one machine needs none of it.
"""
import os
import socket
import time

import jax

from jaxai.errors import UserError


def _reachable(host: str, port: int, timeout_s: float) -> bool:
  deadline = time.monotonic() + timeout_s
  while True:
    try:
      socket.create_connection((host, port), timeout=1.0).close()
      return True
    except OSError:
      if time.monotonic() > deadline:
        return False
      time.sleep(0.5)


def initialize(coordinator_address: str | None, num_processes: int | None, process_id: int | None,
               timeout_s: int = 300) -> None:
  """Validates the arguments, waits (bounded) for process 0's coordinator, then joins.

  jax.distributed aborts the whole process when the coordinator cannot be reached, so processes other
  than 0 first check that its port accepts connections within `timeout_s`.
  """
  if not coordinator_address:
    raise UserError("--num_processes/--process_id need --coordinator_address=host:port (process 0's).")
  if num_processes is None or process_id is None or num_processes < 1:
    raise UserError("A multi-process run needs --num_processes >= 1 and --process_id.")
  if not 0 <= process_id < num_processes:
    raise UserError(f"--process_id={process_id} must be in [0, {num_processes}) for --num_processes="
                    f"{num_processes}.")
  host, _, port = coordinator_address.rpartition(":")
  if not host or not port.isdigit():
    raise UserError(f"--coordinator_address={coordinator_address!r} must look like host:port.")
  if process_id != 0 and not _reachable(host, int(port), timeout_s):
    raise UserError(f"Could not reach the coordinator at {coordinator_address} within {timeout_s} s. "
                    "Is process 0 running with the same --coordinator_address and reachable from here?")
  jax.distributed.initialize(coordinator_address, num_processes, process_id,
                             initialization_timeout=timeout_s)


def detect_cluster() -> str | None:
  """The name of the multi-process launcher this process runs under, if any (env variables only)."""
  slurm = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID")
  if all(v in os.environ for v in slurm) and int(os.environ["SLURM_NTASKS"]) > 1:
    return "SLURM"
  if "OMPI_MCA_orte_hnp_uri" in os.environ and int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1")) > 1:
    return "Open MPI"
  return None


def initialize_from_environment(mode: str, timeout_s: int = 300) -> str | None:
  """`--distributed=auto|cluster|off` (absl validates the value) without explicit process flags.
  Returns the cluster joined, if any."""
  if mode == "off":
    return None
  cluster = detect_cluster() if mode == "auto" else "the detected cluster"
  if cluster is None:
    return None
  try:
    jax.distributed.initialize(initialization_timeout=timeout_s)
  except (RuntimeError, ValueError) as e:
    raise UserError(f"Could not join the multi-process run of {cluster}: {e}. Pass --distributed=off to "
                    "run a single process, or give --coordinator_address/--num_processes/--process_id.")
  return cluster

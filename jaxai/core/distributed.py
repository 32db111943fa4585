"""Joining a multi-process run (`jax.distributed`), with clear errors instead of hangs or aborts."""
import socket
import time

import jax

from jaxai.core.errors import UserError


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

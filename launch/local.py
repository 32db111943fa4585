"""Start one experiment as N local processes with M fake CPU devices each (jax.distributed over gloo).

Exercises the multi-host code path on one machine: each process reads only its rows of every global
batch, process 0 writes metrics, all processes write the Orbax checkpoint together.

  python launch/local.py --processes=2 --devices_per_process=2 -- \
      --config=configs/mnist_cnn.py:tiny --workdir=/tmp/mnist_2x2 --config.data_dir=../shared/data/tfds

SIGTERM or Ctrl-C to this launcher is passed on to every process, as SLURM does: they agree on a step,
save a checkpoint there and exit; the same command resumes. Exits with the first non-zero exit code of
the processes (0 if all succeed).
"""
import argparse
import os
import signal
import socket
import subprocess
import sys


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--processes", type=int, default=2)
  parser.add_argument("--devices_per_process", type=int, default=1)
  parser.add_argument("args", nargs=argparse.REMAINDER, help="-- then the arguments of python -m jaxai.main")
  args = parser.parse_args()
  main_args = args.args[1:] if args.args[:1] == ["--"] else args.args
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  flags = [f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
  env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={args.devices_per_process}"])
  coordinator = f"127.0.0.1:{free_port()}"
  procs = [subprocess.Popen([sys.executable, "-m", "jaxai.main", *main_args,
                             f"--coordinator_address={coordinator}", f"--num_processes={args.processes}",
                             f"--process_id={i}"], env=env) for i in range(args.processes)]

  def forward(signum, frame):
    for p in procs:
      if p.poll() is None:
        p.send_signal(signal.SIGTERM)

  signal.signal(signal.SIGTERM, forward)
  signal.signal(signal.SIGINT, forward)
  codes = [p.wait() for p in procs]
  sys.exit(next((c for c in codes if c), 0))


if __name__ == "__main__":
  main()

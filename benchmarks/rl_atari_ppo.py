"""Atari PPO with CleanRL's published hyperparameters, for as long as a time budget allows on this machine.

  python benchmarks/rl_atari_ppo.py --minutes=20 --workdir=/tmp/pong_ppo   # Pong-v5, 20 minutes
  python benchmarks/rl_atari_ppo.py --minutes=20 --workdir=/tmp/pong_ppo   # again: resumes, continues the curve
  python benchmarks/rl_atari_ppo.py --env_id=Breakout-v5 --minutes=60

Runs `python -m jaxai.main --config=configs/atari_ppo.py --workdir=<workdir> --config.env_id=<env_id>
[--config.* overrides]` as a subprocess from the repository root (its log streams to the console).
The config is the full one, 10M agent steps (40M frames), and is NOT shortened: PPO's learning rate
anneals linearly to 0 over `total_env_steps`, so shortening the run would change the schedule.
Instead the run is stopped once --minutes have passed since launch (start-up and compilation
included): SIGINT, which lets the trainer finish a pending checkpoint write (SIGKILL after 120 s
more; the interrupted run prints a KeyboardInterrupt traceback, which is expected). Running this
script again with the same --workdir resumes from the last checkpoint and continues the same
10M-step schedule. Work since that checkpoint is lost (its log records stay in metrics.jsonl and
are replaced by the resumed run's, see `jaxai.core.metrics.read_metrics`); environments restart on
resume, as the README says. The config checkpoints every 100 iterations (102,400 env steps, ~10
minutes at this machine's rate), so by default this script passes
--config.checkpoint_every_steps=10 (--checkpoint_every; a ~20 MB asynchronous save about every
minute here): persistence only, training is unchanged, and the run is not counted as overridden.

Figures, from `<workdir>/metrics.jsonl` (`read_metrics`):
  learning curve   env steps vs `rl/episode_return`: the mean raw score of the whole games (all
                   lives, unclipped) that ended in each log interval of 10 iterations (10,240 env
                   steps) while training, i.e. with the sampling policy; long runs are averaged
                   into at most --max_rows rows. `eval/episode_return` (greedy, 8 games) appears
                   every 500 iterations.
  env steps/s      this session's steady training rate: env steps over time summed over its log
                   intervals (`perf/env_steps_per_sec`), the first interval dropped. The trainer's
                   timer excludes evaluation; it includes collection, the update, metric read-back
                   and checkpoint saves.
  to 10M           (10M - env steps reached) / that rate, training only; the periodic evaluations
                   (8 greedy games every 512k env steps, ~20 in all) come on top. Also shown: the
                   session's overall rate (env steps gained / the whole wall time, start-up,
                   compilation and evaluations included).

References: CleanRL's `ppo_atari_envpool_xla_jax.py`, same hyperparameters and EnvPool preprocessing,
10M steps: Pong-v5 20.82 +- 0.21, Breakout-v5 420.92 +- 16.75 (docs.cleanrl.dev/rl-algorithms/ppo/,
ppo_atari_envpool_xla_jax_scan section, tag pr-424, mean over seeds of training-episode returns,
the same kind of figure as `rl/episode_return`). The untrained policy scores -20 to -21 in Pong here
(it loses nearly 21-0). One difference from that script: jaxai's PPO clips the value loss by default
(`clip_value_loss=True`, which configs/atari_ppo.py keeps); CleanRL's script uses the plain squared
error, and its docs report no significant difference between the two. Add
--config.clip_value_loss=false for CleanRL's loss.

Measured with `python benchmarks/rl_atari_ppo.py --minutes=3` on 2 CPU cores shared with other jobs
(load average 2.7-4.0; jax 0.10.2, CPU backend), Pong-v5: start-up ~7 s, compilation ~30 s, then
175-183 env steps/s (5.6-5.9 s per 1,024-step iteration), i.e. ~15-16 hours of training for 10M
env steps; 20,480 env steps in 3 minutes, rl/episode_return -20.25 then -20.91. The cost is the
update: the Nature-CNN forward and backward passes over 4 epochs of the 1,024 observations take
~90% of each iteration here (see benchmarks/rl_throughput.py).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

from jaxai.core import metrics as metrics_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "configs/atari_ppo.py"
TOTAL_ENV_STEPS = 10_000_000   # configs/atari_ppo.py
REFERENCES = {"Pong-v5": "CleanRL 20.82 +- 0.21", "Breakout-v5": "CleanRL 420.92 +- 16.75"}


def checkpoint_steps(workdir: str) -> list[int]:
  d = os.path.join(workdir, "checkpoints")
  return sorted(int(n) for n in os.listdir(d) if n.isdigit()) if os.path.isdir(d) else []


def count_lines(path: str) -> int:
  if not os.path.exists(path):
    return 0
  with open(path) as f:
    return sum(1 for line in f if line.strip())


def run_for(cmd: list[str], seconds: float) -> tuple[int | None, float, bool]:
  """Runs `cmd` from the repo root, echoing its output, for at most `seconds`; then SIGINT (SIGKILL
  120 s later). Returns (exit code, wall seconds, whether it was stopped)."""
  start = time.perf_counter()
  proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1, env={**os.environ, "PYTHONUNBUFFERED": "1"})
  thread = threading.Thread(target=lambda: [sys.stdout.write(l) or sys.stdout.flush() for l in proc.stdout],
                            daemon=True)
  thread.start()
  stopped = False
  try:
    proc.wait(timeout=seconds)
  except subprocess.TimeoutExpired:
    stopped = True
    print(f"\n--- time budget of {seconds / 60:.1f} min reached: SIGINT to pid {proc.pid} ---", flush=True)
    proc.send_signal(signal.SIGINT)
    try:
      proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
      print(f"--- still running after 120 s: SIGKILL to pid {proc.pid} ---", flush=True)
      proc.kill()
      proc.wait()
  wall = time.perf_counter() - start
  thread.join(timeout=10)
  return proc.returncode, wall, stopped


def curve_rows(records: list[dict], max_rows: int) -> list[tuple[int, float, int]]:
  """(last env steps, mean rl/episode_return, number of log intervals) per row, at most max_rows rows."""
  points = [(int(r["env_steps"]), r["rl/episode_return"]) for r in records if "rl/episode_return" in r]
  if not points:
    return []
  per_row = -(-len(points) // max_rows)
  rows = []
  for i in range(0, len(points), per_row):
    chunk = points[i:i + per_row]
    rows.append((chunk[-1][0], sum(p[1] for p in chunk) / len(chunk), len(chunk)))
  return rows


def fmt_hours(seconds: float) -> str:
  return f"{seconds / 3600:.1f} h" if seconds == seconds else "?"


def main():
  parser = argparse.ArgumentParser(
      description=__doc__.split("\n")[0], epilog="Other --config.<key>=<value> flags go to jaxai.main.")
  parser.add_argument("--env_id", default="Pong-v5")
  parser.add_argument("--minutes", type=float, default=20.0, help="time budget from launch, start-up included")
  parser.add_argument("--workdir", default="", help="run directory; an existing one is resumed (default: a new temp dir)")
  parser.add_argument("--checkpoint_every", type=int, default=10,
                      help="iterations between checkpoints (0: the config's 100); does not change training")
  parser.add_argument("--max_rows", type=int, default=40, help="rows of the printed learning curve")
  args, overrides = parser.parse_known_args()
  bad = [a for a in overrides if not a.startswith("--config.")]
  if bad:
    parser.error(f"unrecognized arguments: {' '.join(bad)}")
  workdir = os.path.abspath(args.workdir or tempfile.mkdtemp(prefix="jaxai_atari_ppo_"))
  metrics_path = os.path.join(workdir, metrics_lib.METRICS_FILE)
  before = checkpoint_steps(workdir)
  if before:
    print(f"{workdir} holds checkpoints {before}: the run resumes from step {before[-1]}.")
  old_lines = count_lines(metrics_path)

  cmd = [sys.executable, "-m", "jaxai.main", f"--config={CONFIG}", f"--workdir={workdir}",
         f"--config.env_id={args.env_id}"]
  if args.checkpoint_every:
    cmd.append(f"--config.checkpoint_every_steps={args.checkpoint_every}")
  cmd += overrides
  print("$ " + " ".join(cmd), flush=True)
  code, wall, stopped = run_for(cmd, args.minutes * 60)
  if not stopped and code != 0:
    print(f"SUMMARY rl_atari_ppo: {args.env_id} ERROR: jaxai.main exited with status {code} after {wall:.0f} s")
    return 1
  if not os.path.exists(metrics_path):
    print(f"SUMMARY rl_atari_ppo: {args.env_id} ERROR: no metrics after {wall:.0f} s (still compiling? raise --minutes)")
    return 1

  # This session's records: the lines appended after the ones already there (raw, in write order).
  with open(metrics_path) as f:
    lines = [l for l in f.read().split("\n") if l.strip()]
  session = [json.loads(l) for l in lines[old_lines:]]
  logs = [r for r in session if "perf/env_steps_per_sec" in r]
  steady_steps = steady_seconds = 0.0
  for prev, r in zip(logs, logs[1:]):  # drops the first interval (no start point, first executions).
    steps = r["env_steps"] - prev["env_steps"]
    steady_steps += steps
    steady_seconds += steps / r["perf/env_steps_per_sec"]
  rate = steady_steps / steady_seconds if steady_seconds else float("nan")
  rate_note = "first interval dropped"
  if not steady_seconds and logs:  # a single interval: use it, and say so.
    rate, rate_note = logs[0]["perf/env_steps_per_sec"], "ONLY ONE interval, not dropped: a longer run is steadier"

  records = metrics_lib.read_metrics(workdir)
  all_logs = [r for r in records if "env_steps" in r]
  reached = int(all_logs[-1]["env_steps"]) if all_logs else 0
  ckpts = checkpoint_steps(workdir)
  env_steps_per_iteration = int(all_logs[-1]["env_steps"]) // all_logs[-1]["step"] if all_logs else 0
  saved = ckpts[-1] * env_steps_per_iteration if ckpts else 0

  print(f"\n{args.env_id} PPO ({CONFIG}), workdir {workdir}" + (f", overrides {overrides}" if overrides else ""))
  print("learning curve (training games, raw score; mean over log intervals):")
  print("    env steps  rl/episode_return  (intervals)")
  for steps, ret, n in curve_rows(records, args.max_rows):
    print(f"  {steps:11,d}  {ret:17.2f}  ({n})")
  evals = [r for r in records if "eval/episode_return" in r]
  for r in evals:
    print(f"  eval at {r['step'] * env_steps_per_iteration:,} env steps: greedy {r['eval/episode_return']:.2f} "
          f"over {r.get('eval/episodes', 0):.0f} games")
  start_steps = before[-1] * env_steps_per_iteration if before else 0
  gained = (int(logs[-1]["env_steps"]) - start_steps) if logs else 0
  print(f"this session: wall {wall:.0f} s{' (stopped at the time budget)' if stopped else ''}, "
        f"{len(logs)} log intervals, steady {rate:,.0f} env steps/s (training time, {rate_note}); "
        f"overall {gained / wall:,.0f} env steps/s ({gained:,} env steps in the whole wall time: start-up, "
        f"compilation, evaluations included)")
  remaining = max(TOTAL_ENV_STEPS - reached, 0)
  print(f"reached {reached:,} of {TOTAL_ENV_STEPS:,} env steps ({100 * reached / TOTAL_ENV_STEPS:.2f}%); "
        f"last checkpoint at iteration {ckpts[-1] if ckpts else '-'} = {saved:,} env steps (a resume starts there)")
  print(f"time to 10M at {rate:,.0f} env steps/s: {fmt_hours(remaining / rate if rate == rate and rate else float('nan'))} "
        f"more (training only; ~{TOTAL_ENV_STEPS // 512_000} greedy evaluations of 8 games come on top)")
  ref = REFERENCES.get(args.env_id, "no reference")
  last_return = metrics_lib.latest(records, "rl/episode_return")
  last_txt = f"{last_return:.2f}" if last_return is not None else "n/a"
  print(f"SUMMARY rl_atari_ppo: {args.env_id} {reached:,} env steps, rl/episode_return {last_txt} "
        f"(10M-step reference: {ref}), {rate:,.0f} env steps/s, ~{fmt_hours(remaining / rate if rate == rate and rate else float('nan'))} "
        f"to 10M" + (" (overridden config)" if overrides else ""))
  return 0


if __name__ == "__main__":
  sys.exit(main())

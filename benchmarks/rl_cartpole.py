"""CartPole-v1: do the PPO and DQN configs solve it (mean return >= 475 over 100 evaluation episodes)?

  python benchmarks/rl_cartpole.py                  # both full configs, ~2.5 min on 2 CPU cores
  python benchmarks/rl_cartpole.py --algo=ppo       # ~40 s
  python benchmarks/rl_cartpole.py --algo=dqn --config.total_env_steps=100000   # smoke run

Each algorithm runs `python -m jaxai.main --config=configs/cartpole_<algo>.py --workdir=<workdir
root>/<algo> --config.eval_episodes=100 --config.eval_every_steps=<E> [--config.* overrides]` as a
subprocess from the repository root (its log streams to the console, prefixed with the algorithm).
The config is otherwise the full one (500k env steps for both; the learning-rate schedule and
DQN's epsilon decay are those of the full run). E is chosen so that an evaluation happens every
10,240 env steps (PPO: 20 iterations of 4 envs x 128 steps) or 10,000 env steps (DQN: 1,000 train
steps of 10 env steps); both are multiples of the configs' log interval. Each evaluation plays one
whole game in each of 100 separate evaluation envs (capped at 500 steps, CartPole-v1's limit):
greedy actions for PPO, epsilon 0.05 for DQN (the library's evaluation protocol).

Figures, read from `<workdir>/metrics.jsonl` (`jaxai.core.metrics.read_metrics`):
  first >= 475    the first evaluation whose mean return over the 100 games is >= 475: its env
                  steps and two times to reach it:
                    wall   seconds from launching the subprocess until that evaluation's record
                           appeared in metrics.jsonl. This script polls the file every 0.1 s while
                           the run goes on and stamps each new record with its own clock, so it
                           includes interpreter and JAX start-up, environment creation,
                           compilation, every earlier evaluation and checkpoint writes.
                    train  training time only: the trainer's log intervals up to that step, summed
                           from `perf/steps_per_sec` (collection + update, evaluation excluded).
  final           the last evaluation (at the end of training), and whether every evaluation from
                  the first >= 475 onwards stayed >= 475 ("stable"), or else from which one on;
  wall            the whole subprocess, including the final evaluation and checkpoint;
  env steps/s     over training time only (sum of log intervals).
PASS when the final evaluation's mean over 100 games is >= 475 (CartPole-v1's reward threshold,
gymnasium's `spec.reward_threshold`; 500 is the maximum). Any --config.* override makes it a smoke
run, marked as such.

References: CleanRL's `ppo.py` and `dqn.py`, whose hyperparameters the two configs use, report
CartPole-v1 returns of 488.75 +- 18.40 (ppo.py, 500k steps) and 488.69 +- 16.11 (dqn.py, 500k steps):
means over seeds of training-episode returns (docs.cleanrl.dev/rl-algorithms/ppo/#ppopy and
/rl-algorithms/dqn/#dqnpy). The figures here are greedy (PPO) or epsilon-0.05 (DQN) evaluation games,
so they can reach 500 where training returns, with exploration, stay a little below.

Measured with `python benchmarks/rl_cartpole.py --algo=both` on 2 CPU cores shared with other jobs
(load average 3.4-5.0; jax 0.10.2, CPU backend, seed 0; the evaluation returns repeat exactly from run
to run, the times vary with load):
  PPO  first >= 475 at  61,440 env steps (498.1), wall 21 s of which ~17 s start-up and compilation,
       train 1.9 s; dips afterwards (342.5 at 81,920, 281.3 at 163,840), >= 475 at every evaluation
       from 174,080 on; final 500.0 +- 0.0; wall 37 s; ~36,000 env steps/s.  PASS
  DQN  first >= 475 at 310,000 env steps (475.3), wall 60 s, train 50 s; >= 475 at every evaluation
       from there; final 500.0 +- 0.0; wall 95 s; ~6,100 env steps/s.  PASS
       (with the earlier Huber TD loss, before commit e4766dc made MSE the default, the same command
       diverged: q_mean ~19 at 20k env steps, ~5.6e7 at 500k, final return 9.6.)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from jaxai.core import metrics as metrics_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = 475.0
EVAL_EPISODES = 100
BENCHMARKS = {  # algo: (config, eval_every_steps in train steps, env steps per train step)
    "ppo": ("configs/cartpole_ppo.py", 20, 4 * 128),
    "dqn": ("configs/cartpole_dqn.py", 1000, 10),
}


def run_streaming(cmd: list[str], workdir: str, prefix: str) -> tuple[int, float, dict]:
  """Runs `cmd` from the repo root, echoing its output; returns (exit code, wall seconds,
  {line number in metrics.jsonl: seconds since launch when that line appeared})."""
  path = os.path.join(workdir, metrics_lib.METRICS_FILE)
  start = time.perf_counter()
  proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1, env={**os.environ, "PYTHONUNBUFFERED": "1"})

  def echo():
    for line in proc.stdout:
      sys.stdout.write(f"[{prefix}] {line}")
      sys.stdout.flush()

  thread = threading.Thread(target=echo, daemon=True)
  thread.start()
  stamps, seen = {}, 0

  def poll():
    nonlocal seen
    if not os.path.exists(path):
      return
    with open(path) as f:
      lines = f.read().split("\n")[:-1]  # complete lines only (each record ends with a newline).
    now = time.perf_counter() - start
    for i in range(seen, len(lines)):
      stamps[i] = now
    seen = len(lines)

  while proc.poll() is None:
    poll()
    time.sleep(0.1)
  wall = time.perf_counter() - start
  poll()
  thread.join()
  return proc.returncode, wall, stamps


def run(algo: str, workdir: str, overrides: list[str]) -> dict:
  config, eval_every, env_steps_per_step = BENCHMARKS[algo]
  if os.path.exists(os.path.join(workdir, "checkpoints")):
    sys.exit(f"error: {workdir} already holds checkpoints; the trainer would resume from them. "
             "Use a new --workdir.")
  cmd = [sys.executable, "-m", "jaxai.main", f"--config={config}", f"--workdir={workdir}",
         f"--config.eval_episodes={EVAL_EPISODES}", f"--config.eval_every_steps={eval_every}", *overrides]
  print("$ " + " ".join(cmd), flush=True)
  code, wall, stamps = run_streaming(cmd, workdir, algo)
  if code != 0:
    return {"algo": algo, "error": f"jaxai.main exited with status {code}", "wall": wall}

  # Line order of metrics.jsonl (a fresh workdir: no resume, so every line is one record, in order).
  with open(os.path.join(workdir, metrics_lib.METRICS_FILE)) as f:
    lines = [l for l in f.read().split("\n") if l.strip()]
  raw = [json.loads(l) for l in lines]
  train_seconds, prev, seconds_at = 0.0, 0, {}
  evals = []
  for i, r in enumerate(raw):
    if "perf/steps_per_sec" in r:
      train_seconds += (r["step"] - prev) / r["perf/steps_per_sec"]
      prev = r["step"]
      seconds_at[r["step"]] = train_seconds
    if "eval/episode_return" in r:
      evals.append({"step": r["step"], "env_steps": r["step"] * env_steps_per_step,
                    "return": r["eval/episode_return"], "std": r.get("eval/episode_return_std", float("nan")),
                    "episodes": r.get("eval/episodes"), "wall": stamps.get(i, float("nan")),
                    "train": seconds_at.get(r["step"], float("nan"))})
  records = metrics_lib.read_metrics(workdir)
  assert metrics_lib.latest(records, "eval/episode_return") == evals[-1]["return"]
  # Before the first record: start-up, environments, compilation (wall minus training time so far).
  first_log = next(i for i, r in enumerate(raw) if "perf/steps_per_sec" in r)
  startup = stamps.get(first_log, float("nan")) - seconds_at[raw[first_log]["step"]]
  first = next((e for e in evals if e["return"] >= TARGET), None)
  stable = first is not None and all(e["return"] >= TARGET for e in evals if e["step"] >= first["step"])
  settled = None  # the first evaluation from which every one is >= TARGET.
  for e in reversed(evals):
    if e["return"] < TARGET:
      break
    settled = e
  return {"algo": algo, "config": config, "evals": evals, "first": first, "stable": stable, "settled": settled,
          "final": evals[-1], "wall": wall, "startup": startup, "env_steps": prev * env_steps_per_step,
          "env_steps_per_sec": prev * env_steps_per_step / train_seconds if train_seconds else float("nan")}


def main():
  parser = argparse.ArgumentParser(
      description=__doc__.split("\n")[0], epilog="Other --config.<key>=<value> flags go to jaxai.main.")
  parser.add_argument("--algo", choices=[*BENCHMARKS, "both"], default="both")
  parser.add_argument("--workdir", default="", help="root for one workdir per algorithm (default: a new temp dir)")
  args, overrides = parser.parse_known_args()
  bad = [a for a in overrides if not a.startswith("--config.")]
  if bad:
    parser.error(f"unrecognized arguments: {' '.join(bad)}")
  root = os.path.abspath(args.workdir or tempfile.mkdtemp(prefix="jaxai_rl_cartpole_"))
  algos = list(BENCHMARKS) if args.algo == "both" else [args.algo]

  results = [run(a, os.path.join(root, a), overrides) for a in algos]

  smoke = " (smoke run: config overridden, the target applies to the full config)" if overrides else ""
  print(f"\nCartPole-v1, target mean return >= {TARGET:.0f} over {EVAL_EPISODES} evaluation games, "
        f"workdirs in {root}{smoke}")
  summary, ok = [], True
  for r in results:
    if "error" in r:
      print(f"  {r['algo']}: ERROR: {r['error']} after {r['wall']:.0f} s")
      summary.append(f"{r['algo']} ERROR")
      ok = False
      continue
    print(f"\n  {r['algo']} ({r['config']}): evaluations")
    print("    env steps   mean return    std  games   wall s  train s")
    for e in r["evals"]:
      mark = "  <- first >= %.0f" % TARGET if e is r["first"] else ""
      print(f"    {e['env_steps']:9,d}   {e['return']:11.1f}  {e['std']:5.1f}  {e['episodes']:5.0f}"
            f"  {e['wall']:7.1f}  {e['train']:7.1f}{mark}")
    final = r["final"]
    passed = final["return"] >= TARGET
    ok &= passed
    verdict = ("PASS" if passed else "FAIL") + (" (smoke)" if overrides else "")
    if r["first"]:
      f = r["first"]
      reach = (f"first >= {TARGET:.0f} at {f['env_steps']:,} env steps (wall {f['wall']:.0f} s, train "
               f"{f['train']:.0f} s), " + ("stable afterwards" if r["stable"] else
          f"below {TARGET:.0f} again later, >= {TARGET:.0f} at every evaluation from {r['settled']['env_steps']:,}"
          if r["settled"] else f"not >= {TARGET:.0f} at the end"))
    else:
      reach = f"never >= {TARGET:.0f}"
    print(f"  {r['algo']}: {reach}; final {final['return']:.1f} +- {final['std']:.1f} at {final['env_steps']:,} "
          f"env steps; wall {r['wall']:.0f} s (~{r['startup']:.0f} s of it before training began: "
          f"start-up, compilation); {r['env_steps_per_sec']:,.0f} env steps/s (training time)  {verdict}")
    first_txt = f"first>=475@{r['first']['env_steps']}steps/{r['first']['wall']:.0f}s" if r["first"] else "never>=475"
    summary.append(f"{r['algo']} final {final['return']:.1f} {first_txt} wall {r['wall']:.0f}s {verdict}")
  print("SUMMARY rl_cartpole: " + ", ".join(summary))
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main())

"""Go strength after a fixed AlphaZero training budget: win rates against a uniform-random player and
against GNU Go at levels 1 and 10, on 7x7 (komi 7.5, Tromp-Taylor, positional superko).

  python benchmarks/go_strength.py                       # train configs/go7_alphazero.py, then evaluate
  python benchmarks/go_strength.py --steps=300 --gnugo_games=4   # a shorter run

1. Training: `python -m jaxai.main --config=configs/go7_alphazero.py --workdir=<workdir>/run
   --config.num_train_steps=<steps>` as a subprocess (a finished workdir is not retrained; a partial
   one resumes). Budget of the default: 800 train steps = 410k self-play moves (64 games x 8 plies
   per step, Gumbel MuZero search with 16 simulations, a 4-block 32-channel network), ~6k games,
   2 x 256-position gradient steps (replay_batch_size) per train step: ~20 min of training here.
2. Evaluation of the final checkpoint (`load_agent`, deterministic search, --simulations per move):
   vs random  --random_games games in JAX (`arena.make_match`, half with each colour);
   vs GNU Go  --gnugo_games games per level through GTP (`jaxai.go.match.run_match`, colours
              alternating), GNU Go 3.8 with --chinese-rules --positional-superko --capture-all-dead.
   Each with its Wilson 95% interval (draws count half).
Speed figures come from the run's metrics.jsonl: train steps/s and self-play games/s over training
time (sum of the logged intervals, evaluations excluded).

How the budget scales: one train step is ~128 batched network evaluations of 64 positions (the
search) plus two 256-position gradient steps; on 2 shared CPU cores that is 1-4 s. On one GPU the same
step is bound by the sequential search loop (~2-5 ms per batched evaluation and rules step), so
`num_games` can rise to 1024+ at about the same cost per step: the 800-step budget runs in ~5
minutes (an estimate, not measured), and 10-20x the games (the 9x9 config: 256 games x 32 simulations, 100k steps) fit in a day.

Measured with the defaults (train: `python -m jaxai.main --config=configs/go7_alphazero.py`, 800
steps; then `python benchmarks/go_strength.py --skip_training --gnugo_games=16`) on 2 CPU cores shared
with other jobs (load average 6-13; jax 0.10.2 CPU; seed 0):
  training    800 steps in 1075 s of train time (0.74 train steps/s), 23 min wall with start-up and
              five evaluations; 5,993 self-play games (5.6 games/s, ~74 plies each by the end),
              410k self-play moves; final policy loss 2.05, value loss 0.47 (from 3.1 and 0.72).
  vs random   1.000 over 100 games (95% 0.963-1.000); already 1.000 at every evaluation from step 200.
  vs previous 0.94 (step 200 vs initial), 0.81, 0.88, 0.75 (32 exploring games each).
  vs GNU Go   level 1: 0.000 over 16 games (95% 0.000-0.194); level 10: 0.000 over 16 (0.000-0.194).
              GNU Go captures every stone (W+56.5 / B+41.5): the agent opens sensibly but loses the
              fights and passes while its groups are still capturable. Beating GNU Go on 7x7 needs a
              budget of a different order (see the scaling above), not reachable on this machine.
"""
import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def train(workdir: str, steps: int, overrides: list[str]) -> float:
  command = [sys.executable, "-m", "jaxai.main", "--config=configs/go7_alphazero.py",
             f"--workdir={workdir}", f"--config.num_train_steps={steps}"] + overrides
  print("$", " ".join(command), flush=True)
  start = time.time()
  subprocess.run(command, cwd=REPO, check=True, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  return time.time() - start


def speed(workdir: str) -> dict:
  from jaxai.core.metrics import read_metrics
  records = [r for r in read_metrics(workdir) if "perf/steps_per_sec" in r]
  seconds = games = 0.0
  previous = 0
  for r in records:
    steps = r["step"] - previous
    previous = r["step"]
    seconds += steps / r["perf/steps_per_sec"]
    games += steps * r.get("selfplay/games", 0.0)
  return {"train_seconds": seconds, "steps": previous, "steps_per_sec": previous / max(seconds, 1e-9),
          "games": games, "games_per_sec": games / max(seconds, 1e-9),
          "final_losses": {k: records[-1][k] for k in ("train/policy_loss", "train/value_loss")}}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", default="/tmp/go_strength")
  parser.add_argument("--steps", type=int, default=800)
  parser.add_argument("--random_games", type=int, default=100)
  parser.add_argument("--gnugo_games", type=int, default=20)
  parser.add_argument("--gnugo_levels", default="1,10")
  parser.add_argument("--simulations", type=int, default=32, help="search simulations per move in evaluation")
  parser.add_argument("--explore_moves", type=int, default=4,
                      help="vs GNU Go: opening plies in which the agent samples its move (games differ)")
  parser.add_argument("--skip_training", action="store_true", help="evaluate the workdir's checkpoint as it is")
  args, overrides = parser.parse_known_args()
  run = os.path.join(args.workdir, "run")
  wall = None if args.skip_training else train(run, args.steps, overrides)

  import jax
  from jaxai.core import sharding
  from jaxai.go import gnugo, match
  from jaxai.tasks import alphazero
  from jaxai.tasks.alphazero import arena
  from jaxai.tasks.alphazero.gnugo_eval import GnuGoEvaluation

  agent = alphazero.load_agent(run, num_simulations=args.simulations)
  figures = {"speed": speed(run), "train_wall_seconds": wall, "simulations": args.simulations}
  play = sharding.on_local_device(arena.make_match(agent.go, agent.searcher, args.random_games, args.simulations))
  start = time.time()
  scores = jax.device_get(play(agent.params, agent.params, jax.random.key(1), True, False))
  wins = float(scores.sum())
  figures["vs_random"] = {"games": args.random_games, "win_rate": wins / args.random_games,
                          "interval": match.wilson_interval(wins, args.random_games),
                          "seconds": time.time() - start}
  print(f"vs random: {wins / args.random_games:.3f} over {args.random_games} games "
        f"(95% {figures['vs_random']['interval'][0]:.3f}-{figures['vs_random']['interval'][1]:.3f})", flush=True)
  if gnugo.available() and args.gnugo_games:
    config = agent.config
    config.eval_simulations = args.simulations
    config.eval_explore_moves = args.explore_moves
    evaluation = GnuGoEvaluation(config, agent.go, agent.searcher, games=args.gnugo_games)
    for level in map(int, args.gnugo_levels.split(",")):
      start = time.time()
      evaluation.level = level  # the agent, compiled once, is reused.
      result = evaluation.play(agent.params, log=lambda line: print(f"  gnugo {level}: {line}", flush=True))
      figures[f"vs_gnugo_{level}"] = {"games": result.games, "win_rate": result.win_rate,
                                      "interval": result.interval(), "a_black_wins": result.a_black_wins,
                                      "seconds": time.time() - start}
      lo, hi = result.interval()
      print(f"vs GNU Go level {level}: {result.win_rate:.3f} over {result.games} games (95% {lo:.3f}-{hi:.3f})",
            flush=True)
  else:
    print("GNU Go not found (apt-get install gnugo): its win rates are skipped.")
  s = figures["speed"]
  print(f"training: {s['steps']} steps in {s['train_seconds']:.0f} s ({s['steps_per_sec']:.2f} train steps/s), "
        f"{s['games']:.0f} self-play games ({s['games_per_sec']:.2f} games/s); final {s['final_losses']}")
  print(json.dumps(figures, indent=1, default=float))


if __name__ == "__main__":
  main()

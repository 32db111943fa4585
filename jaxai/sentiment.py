"""Score the sentiment of sentences with a trained SST-2 classifier (configs/sst2_classifier.py runs):

  python -m jaxai.sentiment --workdir=<run> --sentence="a charming and often affecting journey"
  python -m jaxai.sentiment --workdir=<run> < reviews.txt     # one sentence per line

Prints `positive 0.93  <sentence>` per sentence (the label and its probability). SST-2's text is
lower-cased with spaces around punctuation; input written the same way scores best. The run is
rebuilt from its config.json and facts.json (its SentencePiece model); its latest checkpoint is restored.
"""
import sys

from absl import app

from jaxai.errors import UserError


def score_lines(workdir: str, lines: list[str]):
  """(N, 2) probabilities (negative, positive) of `lines`. UserError for an empty line."""
  from jaxai.core import runs
  from jaxai.tasks import sentiment
  if not lines or any(not line.strip() for line in lines):
    raise UserError("Give at least one sentence, and no empty ones: --sentence='a charming journey' or one "
                    "sentence per line on standard input.")
  config = runs.load_config(workdir, "sentiment", sentiment.default_config())
  task = sentiment.make_task(config, runs.load_facts(workdir))
  state, _ = runs.restore_latest_state(workdir, task)
  return sentiment.score(config, task.facts, state.params, lines)


def main(argv):
  from absl import flags
  from jaxai.core import logs
  from jaxai.data import sst2
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}.")
  logs.quiet_libraries()
  f = flags.FLAGS
  lines = [f.sentence] if f.sentence is not None else [line for line in sys.stdin.read().splitlines() if line.strip()]
  try:
    probs = score_lines(f.workdir, lines)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  for line, p in zip(lines, probs):
    label = int(p.argmax())
    print(f"{sst2.LABEL_NAMES[label]} {p[label]:.2f}  {line}")


if __name__ == "__main__":
  from absl import flags
  flags.DEFINE_string("workdir", None, "Directory of an SST-2 training run.")
  flags.DEFINE_string("sentence", None, "The sentence to score; default: one sentence per stdin line.")
  flags.mark_flag_as_required("workdir")
  app.run(main)

"""Generate text from a trained character model:

  python -m jaxai.sample --workdir=<run> --prompt="ROMEO:" --num_chars=500 \
      --temperature=0.8 --top_k=40 --seed=0 [--num_samples=2]

The run is rebuilt from `<workdir>/config.json` and `facts.json` (its vocabulary) without reading the
training text, its latest checkpoint restored, and the whole generation runs as one compiled loop on
one device (jaxai.lm.generate). The same seed gives the same text. A run saved before facts.json
existed gets its vocabulary from its training text, as it was trained.
"""
import sys

from absl import app, logging

from jaxai.errors import UserError


def check_args(prompt: str, num_chars: int, temperature: float, top_k: int, num_samples: int) -> None:
  """The checks that need no run: before anything is read or compiled."""
  if num_chars < 0 or temperature < 0 or top_k < 0 or num_samples < 1:
    raise UserError("--num_chars, --temperature and --top_k must be >= 0 and --num_samples >= 1.")
  if not prompt:
    raise UserError("--prompt is empty: give at least one character to start from, e.g. --prompt='ROMEO:' "
                    "(a newline works too).")


def restore_task(workdir: str):
  """(config, task) of the language-model run in `workdir`, built from its saved config and facts."""
  from jaxai.core import runs
  from jaxai.tasks import lm
  config = runs.load_config(workdir, "lm")
  config.sample.num_chars = 0  # the task's own eval-time sampling is not needed when restoring.
  facts = runs.load_facts(workdir)
  if facts is None:
    logging.warning("%s has no %s (saved before facts existed): reading the training text for the "
                    "vocabulary.", workdir, runs.FACTS_FILE)
  return config, lm.make_task(config, facts)


def sample(workdir: str, prompt: str, num_chars: int = 500, temperature: float = 0.8, top_k: int = 40,
           seed: int = 0, num_samples: int = 1) -> list[str]:
  """`num_samples` texts: the prompt and `num_chars` characters generated after it. UserError on bad input."""
  from jaxai.core import runs, sharding
  from jaxai.lm import generate
  from jaxai.tasks import lm
  check_args(prompt, num_chars, temperature, top_k, num_samples)
  config, task = restore_task(workdir)
  vocab = lm.vocab_of(task.facts)
  prompt_ids = generate.encode_prompt(vocab, prompt)
  state, step = runs.restore_latest_state(workdir, task)
  logging.info("Sampling from step %d of %s (%s, vocabulary %d)", step, workdir, config.model.name, vocab.size)
  sampler = generate.Sampler(lm.make_model(config, vocab.size), top_k, jit=sharding.on_local_device)
  ids = sampler.generate(state.params, prompt_ids, num_chars, temperature, seed, num_samples)
  return [prompt + vocab.decode(row) for row in ids]


def main(argv):
  from absl import flags
  from jaxai.core import logs
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}.")
  logs.quiet_libraries()
  f = flags.FLAGS
  try:
    texts = sample(f.workdir, f.prompt, f.num_chars, f.temperature, f.top_k, f.seed, f.num_samples)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  print("\n----------\n".join(texts))


def _define_flags():
  from absl import flags
  flags.DEFINE_string("workdir", None, "Directory of a language-model training run.")
  flags.DEFINE_string("prompt", "\n", "Text to continue; every character must be in the vocabulary.")
  flags.DEFINE_integer("num_chars", 500, "Characters to generate after the prompt.")
  flags.DEFINE_float("temperature", 0.8, "Softmax temperature; 0 = always the most likely character.")
  flags.DEFINE_integer("top_k", 40, "Sample among the k most likely characters; 0 = all.")
  flags.DEFINE_integer("seed", 0, "Random seed; the same seed gives the same text.")
  flags.DEFINE_integer("num_samples", 1, "Independent samples, generated as one batch.")
  flags.mark_flag_as_required("workdir")


if __name__ == "__main__":
  _define_flags()
  app.run(main)

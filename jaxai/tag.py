"""Tag sentences with a trained named-entity tagger (configs/conll2003_*.py runs):

  python -m jaxai.tag --workdir=<run> --sentence="EU rejects German call to boycott British lamb ."
  echo "Peter Blackburn visited Brussels ." | python -m jaxai.tag --workdir=<run>   # one sentence per line

Tokens are separated by spaces, as in CoNLL-2003 (put spaces around punctuation). Each sentence prints
as `word/TAG ...` followed by its entities. The run is rebuilt from its config.json and facts.json (the
vocabularies) without the training data; its latest checkpoint is restored.
"""
import sys

from absl import app

from jaxai.errors import UserError


def tag_lines(workdir: str, lines: list[str]) -> list[tuple[list[str], list[str]]]:
  """(tokens, IOB2 tags) of each line. UserError for an empty line or a run that is not an NER run."""
  from jaxai.core import runs
  from jaxai.tasks import ner
  sentences = [line.split() for line in lines]
  if not sentences or any(not s for s in sentences):
    raise UserError("Give at least one sentence, and no empty ones: --sentence='EU rejects German call .' or "
                    "one sentence per line on standard input.")
  config = runs.load_config(workdir, "ner", ner.default_config())
  task = ner.make_task(config, runs.load_facts(workdir))
  state, _ = runs.restore_latest_state(workdir, task)
  return list(zip(sentences, ner.tag(config, task.facts, state.params, sentences)))


def main(argv):
  from absl import flags
  from jaxai.core import logs
  from jaxai.data import conll
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}.")
  logs.quiet_libraries()
  f = flags.FLAGS
  lines = [f.sentence] if f.sentence is not None else [line for line in sys.stdin.read().splitlines() if line.strip()]
  try:
    for tokens, tags in tag_lines(f.workdir, lines):
      print(" ".join(f"{w}/{t}" for w, t in zip(tokens, tags)))
      spans = sorted(conll.entities(tags), key=lambda span: span[1])
      print("  entities: " + (", ".join(f"{kind} {' '.join(tokens[a:b])!r}" for kind, a, b in spans) or "none"))
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  from absl import flags
  flags.DEFINE_string("workdir", None, "Directory of a named-entity training run.")
  flags.DEFINE_string("sentence", None, "Space-separated tokens to tag; default: one sentence per stdin line.")
  flags.mark_flag_as_required("workdir")
  app.run(main)

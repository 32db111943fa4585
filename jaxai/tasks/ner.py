"""Named-entity recognition on CoNLL-2003: config -> sentences -> tagger -> pure train/eval steps.

Data: `config.data_dir` holds the original English files (eng.train, eng.testa, eng.testb; IOB1 tags),
read by jaxai.data.conll and converted to IOB2 (every entity kept). Words become word ids (lower-cased,
digits -> 0, words seen fewer than `min_word_count` times unknown), casing classes and character ids
(jaxai.data.words). Training sentences longer than `max_len` tokens are truncated (3 of 14,041 at 64);
evaluation never truncates: each split is padded to its longest sentence.

Model (jaxai.models.taggers): Lample et al. (2016)'s BiLSTM-CRF ('bilstm': word embedding + character
BiLSTM + casing -> BiLSTM -> emissions -> CRF with IOB2 constraints) or a Transformer tagger
('transformer': the same token features -> bidirectional Transformer encoder -> emissions -> CRF);
`model.use_crf=False` replaces the CRF by independent softmaxes. Loss: nats per sentence.

Evaluation: the tags of every sentence of each `eval_splits` split (Viterbi), scored entity by entity by
seqeval (conlleval's rules): '<prefix>/f1', '/precision', '/recall' (micro averages), '/f1_<TYPE>' per
entity type, '/token_accuracy', and the full per-type report as text ('<prefix>_report'); prefix
'eval' for the dev split (eng.testa), 'test' for eng.testb.

Facts: {'words', 'chars', 'tags', 'num_train_sentences'}: the vocabularies and tag names, so `python -m jaxai.tag` rebuilds
the tagger without the training data.
"""
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxai.core import optim, sharding
from jaxai.core.config import trainer_config
from jaxai.core.evaluators import DatasetEvaluator
from jaxai.core.sources import DatasetSource
from jaxai.core.state import TrainState
from jaxai.core.summaries import Text
from jaxai.core.task import Task
from jaxai.data import conll, pipeline, words
from jaxai.errors import UserError
from jaxai.models import taggers

MODELS = ("bilstm", "transformer")
SPLIT_PREFIX = {"dev": "eval", "test": "test", "train": "train_eval"}


def default_config() -> ml_collections.ConfigDict:
  config = trainer_config()
  config.task = "ner"
  config.data_dir = ""                 # the folder of eng.train, eng.testa, eng.testb (e.g. ../shared/data/conll2003).
  config.eval_splits = "dev,test"      # scored at every evaluation: dev = eng.testa, test = eng.testb.
  config.max_train_sentences = 0       # 0 = all; else the first N (tiny runs).
  config.max_eval_sentences = 0        # 0 = all; else the first N of each eval split.
  config.min_word_count = 2            # rarer training words share the unknown word id.
  config.max_len = 64                  # training sentences are truncated to this many tokens.
  config.max_word_chars = 20           # characters per word seen by the character encoder.
  config.batch_size = 32               # sentences per step, over all devices and processes.
  config.eval_batch_size = 256
  config.num_epochs = 30.0
  config.model = ml_collections.ConfigDict(dict(
      name="bilstm",                   # one of MODELS.
      use_crf=True,                    # False: per-token softmax instead of the CRF.
      word_dim=100, char_dim=25, char_hidden=25, case_dim=8,
      hidden=100,                      # bilstm: units per direction.
      num_layers=2, num_heads=4, embed_dim=128, max_positions=128,  # transformer.
      dropout_rate=0.5,
  ))
  config.optimizer.update(dict(name="adam", learning_rate=1e-3, schedule="constant", grad_clip_norm=5.0))
  config.log_every_steps = 100
  config.eval_every_steps = 0
  return config


def check_config(config) -> None:
  m = config.model
  if m.name not in MODELS:
    raise UserError(f"config.model.name={m.name!r} is unknown; available models: {MODELS}.")
  if m.name == "transformer" and m.embed_dim % m.num_heads:
    raise UserError(f"config.model.embed_dim={m.embed_dim} must be a multiple of num_heads={m.num_heads}.")
  if not config.data_dir:
    raise UserError("config.data_dir is empty: set it to the folder with CoNLL-2003's eng.train, eng.testa "
                    "and eng.testb, e.g. --config.data_dir=../shared/data/conll2003.")
  for split in eval_splits(config):
    if split not in SPLIT_PREFIX:
      raise UserError(f"config.eval_splits has {split!r}; use splits of {sorted(SPLIT_PREFIX)}.")
  if config.max_len < 1 or config.max_word_chars < 1 or config.min_word_count < 1:
    raise UserError("config.max_len, max_word_chars and min_word_count must be >= 1.")
  if config.batch_size % jax.device_count():
    raise UserError(f"config.batch_size={config.batch_size} must be a multiple of the {jax.device_count()} "
                    "device(s).")


def eval_splits(config) -> list[str]:
  return [s.strip() for s in config.eval_splits.split(",") if s.strip()]


def read_sentences(config, split: str, limit: int = 0) -> list[conll.Sentence]:
  """The split's sentences with IOB2 tags (the first `limit` if > 0)."""
  sentences = conll.read_split(config.data_dir, split)
  sentences = sentences[:limit] if limit else sentences
  return [conll.Sentence(s.words, conll.iob1_to_iob2(s.tags)) for s in sentences]


def tag_names_of(sentences) -> list[str]:
  """'O' first, then B-/I- tags sorted by type: the tag ids."""
  seen = {t for s in sentences for t in s.tags} - {"O"}
  types = sorted({t[2:] for t in seen})
  return ["O"] + [f"{p}-{k}" for k in types for p in "BI"]


def make_facts(sentences, min_word_count: int) -> dict:
  word_list = [s.words for s in sentences]
  return {"words": words.word_vocab(word_list, min_word_count).items,
          "chars": words.char_vocab(word_list).items, "tags": tag_names_of(sentences),
          "num_train_sentences": len(sentences)}


def check_facts(facts) -> None:
  if not isinstance(facts, dict) or not all(facts.get(k) for k in ("words", "chars", "tags", "num_train_sentences")):
    raise UserError(f"The run's facts lack 'words', 'chars' or 'tags' (its vocabularies): facts.json is "
                    "damaged or not a named-entity run's.")


def encode(facts: dict, sentences, max_len: int, max_word_chars: int) -> dict:
  """Inputs (and 'tags' ids where the sentences have tags) as padded arrays (jaxai.data.words)."""
  tag_ids = {t: i for i, t in enumerate(facts["tags"])}
  arrays = words.encode_sentences([s.words for s in sentences], words.Vocab(facts["words"]),
                                  words.Vocab(facts["chars"]), max_len, max_word_chars)
  tags = np.zeros((len(sentences), max_len), np.int32)
  for i, s in enumerate(sentences):
    unknown = set(s.tags) - set(tag_ids)
    if unknown:
      raise UserError(f"Tags {sorted(unknown)} do not occur in the training split, so the model cannot "
                      "predict them.")
    tags[i, :min(len(s.tags), max_len)] = [tag_ids[t] for t in s.tags[:max_len]]
  return arrays | {"tags": tags}


def padded_length(sentences, multiple: int = 8) -> int:
  longest = max(len(s.words) for s in sentences)
  return -(-longest // multiple) * multiple


def make_model(config, facts: dict) -> taggers.Tagger:
  m = config.model
  features = taggers.WordFeatures(len(facts["words"]), len(facts["chars"]), len(words.CASES), m.word_dim,
                                  m.char_dim, m.char_hidden, m.case_dim)
  if m.name == "bilstm":
    encoder = taggers.BiLSTMEncoder(features, m.hidden, m.dropout_rate)
  else:
    encoder = taggers.TransformerEncoder(features, m.max_positions, m.num_layers, m.num_heads, m.embed_dim,
                                         m.dropout_rate)
  return taggers.Tagger(encoder, tuple(facts["tags"]), m.use_crf, m.dropout_rate)


def entity_scores(gold: list, predicted: list, prefix: str) -> dict:
  """seqeval's entity-level scores of IOB2 tag sequences (conlleval's matching) as summaries."""
  from seqeval import metrics
  report = metrics.classification_report(gold, predicted, digits=4, output_dict=True, zero_division=0)
  out = {f"{prefix}/precision": report["micro avg"]["precision"], f"{prefix}/recall": report["micro avg"]["recall"],
         f"{prefix}/f1": report["micro avg"]["f1-score"]}
  for kind in sorted(k for k in report if not k.endswith(" avg")):
    out[f"{prefix}/f1_{kind}"] = report[kind]["f1-score"]
  tokens = [(g, p) for gs, ps in zip(gold, predicted) for g, p in zip(gs, ps)]
  out[f"{prefix}/token_accuracy"] = float(np.mean([g == p for g, p in tokens]))
  out[f"{prefix}_report"] = Text(metrics.classification_report(gold, predicted, digits=4, zero_division=0))
  return out


def make_task(config: ml_collections.ConfigDict, facts: dict | None = None) -> Task:
  check_config(config)
  train = None
  if facts is None:
    train = read_sentences(config, "train", config.max_train_sentences)
    facts = make_facts(train, config.min_word_count)
  check_facts(facts)
  model = make_model(config, facts)
  max_len, max_chars = config.max_len, config.max_word_chars

  @functools.cache
  def eval_data(split):  # (sentences, arrays), each split padded to its longest sentence.
    sentences = read_sentences(config, split, config.max_eval_sentences)
    length = padded_length(sentences)
    if config.model.name == "transformer" and length > config.model.max_positions:
      raise UserError(f"The {split!r} split has a sentence of {max(len(s.words) for s in sentences)} "
                      f"tokens, more than config.model.max_positions={config.model.max_positions}: raise it.")
    return sentences, encode(facts, sentences, length, max_chars)

  def train_arrays():
    return encode(facts, train if train is not None else read_sentences(config, "train",
                                                                          config.max_train_sentences),
                  max_len, max_chars)

  if train is not None:
    for split in eval_splits(config):
      eval_data(split)  # missing files and unknown tags are errors now, before anything compiles.
  source = DatasetSource(train_arrays() if train is not None else train_arrays, config.batch_size, config.seed,
                         num_examples=facts["num_train_sentences"])
  num_steps = config.num_train_steps or int(np.ceil(config.num_epochs * source.steps_per_epoch))
  tx = optim.make_optimizer(config.optimizer, num_steps)
  learning_rate = optim.make_schedule(config.optimizer, num_steps)
  inputs_of = lambda batch: {k: batch[k] for k in ("words", "cases", "chars", "length")}

  def init(rng) -> TrainState:
    dummy = {"words": jnp.zeros((1, max_len), jnp.int32), "cases": jnp.zeros((1, max_len), jnp.int32),
             "chars": jnp.zeros((1, max_len, max_chars), jnp.int32), "length": jnp.ones((1,), jnp.int32)}
    params = model.init({"params": rng}, dummy, dummy["words"])["params"]
    return TrainState.create(params, tx)

  def train_step(state: TrainState, batch, rng):
    def loss_fn(params):
      per_sentence = model.apply({"params": params}, inputs_of(batch), batch["tags"], train=True,
                                 rngs={"dropout": rng}, method=taggers.Tagger.loss)
      return per_sentence.mean()

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    metrics = {"loss": loss, "grad_norm": optax.global_norm(grads), "learning_rate": learning_rate(state.step)}
    return state.apply_gradients(tx, grads), metrics

  def decode_step(state: TrainState, batch):
    return {"pred": model.apply({"params": state.params}, inputs_of(batch), method=taggers.Tagger.decode)}

  def evaluator(split):
    prefix = SPLIT_PREFIX[split]

    def finish(rows, step):
      sentences, _ = eval_data(split)
      gold = [list(s.tags) for s in sentences]
      predicted = [[facts["tags"][i] for i in row[:len(s.words)]] for row, s in zip(rows["pred"], sentences)]
      return entity_scores(gold, predicted, prefix)

    return DatasetEvaluator(decode_step, lambda: pipeline.padded_batches(eval_data(split)[1], config.eval_batch_size),
                            prefix=prefix, finish=finish)

  data = (f"{len(train):,} train sentences ({sum(len(s.words) > max_len for s in train)} truncated to "
          f"{max_len} tokens); " if train is not None else "")
  summary = (f"CoNLL-2003 NER: {data}vocabulary {len(facts['words']):,} words, {len(facts['chars'])} "
             f"characters, {len(facts['tags'])} tags; model {config.model.name}"
             f"{'-CRF' if config.model.use_crf else ' (softmax)'}; eval on {config.eval_splits}")
  return Task(name="ner", init=init, train_step=train_step, source=source, num_train_steps=num_steps,
              evaluators=[evaluator(s) for s in eval_splits(config)],
              units_per_step={"sentences": config.batch_size}, facts=facts, summary=summary)


def tag(config, facts: dict, params, sentences: list[list[str]]) -> list[list[str]]:
  """IOB2 tags for tokenized `sentences` with a trained tagger's `params` (one jitted call per batch)."""
  if not sentences or any(not s for s in sentences):
    raise UserError("Give at least one sentence with at least one token to tag.")
  model = make_model(config, facts)
  fake = [conll.Sentence(tuple(s), ("O",) * len(s)) for s in sentences]
  arrays = encode(facts, fake, padded_length(fake), config.max_word_chars)
  decode = sharding.on_local_device(lambda p, x: model.apply({"params": p}, x, method=taggers.Tagger.decode))
  pred = np.asarray(decode(params, {k: arrays[k] for k in ("words", "cases", "chars", "length")}))
  return [[facts["tags"][i] for i in row[:len(s)]] for row, s in zip(pred, sentences)]

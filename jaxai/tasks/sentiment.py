"""Sentence sentiment on GLUE SST-2: config -> sentences -> subword ids -> Transformer encoder -> label.

Data: `config.data_dir` holds SST-2's train.tsv and dev.tsv (jaxai.data.sst2). A SentencePiece model
(`config.tokenizer`: BPE or unigram, jaxai.data.tokenizer) is trained on the training sentences and saved
in the run's facts, so `python -m jaxai.sentiment` scores new text with the same vocabulary. Sentences
are cut to `max_len` subword tokens (the training split's longest has 66 unigram tokens at vocabulary
8,000; the cut is counted in the log line).

Model (jaxai.models.text.SentenceClassifier): a bidirectional Transformer encoder (the GPT's blocks
with `causal=False` and padding masked), the mean over real tokens, a linear head. Loss: softmax cross
entropy (with optional label smoothing). Evaluation: loss and accuracy on `eval_split` (dev: 872
sentences; the test split has no labels).

Facts: {'tokenizer': the SentencePiece model, 'num_train_examples'}.
"""
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
from jaxai.core.task import Task
from jaxai.data import pipeline, sst2, tokenizer
from jaxai.errors import UserError
from jaxai.models import gpt, text
from jaxai.ops import losses


def default_config() -> ml_collections.ConfigDict:
  config = trainer_config()
  config.task = "sentiment"
  config.data_dir = ""                 # the folder of SST-2's train.tsv and dev.tsv (e.g. ../shared/data/sst2).
  config.eval_split = "dev"
  config.max_train_examples = 0        # 0 = all 67,349; else the first N (tiny runs).
  config.max_eval_examples = 0
  config.max_len = 64                  # subword tokens per sentence (longer ones are cut).
  config.tokenizer = ml_collections.ConfigDict(dict(
      model_type="unigram",            # 'unigram' or 'bpe' (SentencePiece).
      vocab_size=8000,
  ))
  config.model = ml_collections.ConfigDict(dict(
      num_layers=2, num_heads=4, embed_dim=128, dropout_rate=0.1, dtype="auto",
  ))
  config.label_smoothing = 0.0
  config.batch_size = 64
  config.eval_batch_size = 256
  config.num_epochs = 3.0
  config.optimizer.update(dict(name="adamw", learning_rate=5e-4, weight_decay=0.01, warmup_steps=200,
                               schedule="cosine", grad_clip_norm=1.0))
  config.log_every_steps = 100
  config.eval_every_steps = 1000
  return config


def check_config(config) -> None:
  m = config.model
  if m.embed_dim % m.num_heads:
    raise UserError(f"config.model.embed_dim={m.embed_dim} must be a multiple of num_heads={m.num_heads}.")
  gpt.compute_dtype(m.dtype)
  if not config.data_dir:
    raise UserError("config.data_dir is empty: set it to the folder with SST-2's train.tsv and dev.tsv, "
                    "e.g. --config.data_dir=../shared/data/sst2.")
  if config.max_len < 2:
    raise UserError(f"config.max_len={config.max_len} must be >= 2.")
  if config.batch_size % jax.device_count():
    raise UserError(f"config.batch_size={config.batch_size} must be a multiple of the {jax.device_count()} "
                    "device(s).")


def make_model(config, vocab_size: int) -> text.SentenceClassifier:
  m = config.model
  return text.SentenceClassifier(vocab_size, len(sst2.LABEL_NAMES), config.max_len, m.num_layers, m.num_heads,
                                 m.embed_dim, m.dropout_rate, gpt.compute_dtype(m.dtype))


def read(config, split: str, limit: int) -> sst2.Examples:
  examples = sst2.read_split(config.data_dir, split)
  if limit:
    examples = sst2.Examples(examples.sentences[:limit], examples.labels[:limit])
  return examples


def encode(tok: tokenizer.Tokenizer, examples: sst2.Examples, max_len: int) -> tuple[dict, int]:
  """({'ids' (N, max_len), 'length' (N,), 'label' (N,)}, how many sentences were cut)."""
  ids, lengths = tok.encode_batch(examples.sentences, max_len)
  cut = int((lengths > max_len).sum())
  return {"ids": ids, "length": np.maximum(np.minimum(lengths, max_len), 1),
          "label": np.asarray(examples.labels, np.int32)}, cut


def make_task(config: ml_collections.ConfigDict, facts: dict | None = None) -> Task:
  check_config(config)
  train = None
  if facts is None:
    train = read(config, "train", config.max_train_examples)
    tok = tokenizer.Tokenizer.train(train.sentences, config.tokenizer.vocab_size, config.tokenizer.model_type)
    facts = {"tokenizer": tok.to_facts(), "num_train_examples": len(train.sentences)}
  tok = tokenizer.Tokenizer.from_facts(facts.get("tokenizer") if isinstance(facts, dict) else None)
  model = make_model(config, tok.vocab_size)
  train_arrays, cut = encode(tok, train, config.max_len) if train is not None else (None, 0)
  eval_arrays = None
  if train is not None:  # a missing dev file is an error now, before anything compiles.
    eval_arrays = encode(tok, read(config, config.eval_split, config.max_eval_examples), config.max_len)[0]
    if (eval_arrays["label"] < 0).any():
      raise UserError(f"The {config.eval_split!r} split of SST-2 has no labels (GLUE hides the test "
                      "labels): evaluate on 'dev'.")
  load_train = lambda: encode(tok, read(config, "train", config.max_train_examples), config.max_len)[0]
  load_eval = lambda: eval_arrays if eval_arrays is not None else encode(
      tok, read(config, config.eval_split, config.max_eval_examples), config.max_len)[0]
  source = DatasetSource(train_arrays if train_arrays is not None else load_train, config.batch_size,
                         config.seed, num_examples=facts["num_train_examples"])
  num_steps = config.num_train_steps or int(np.ceil(config.num_epochs * source.steps_per_epoch))
  tx = optim.make_optimizer(config.optimizer, num_steps)
  learning_rate = optim.make_schedule(config.optimizer, num_steps)

  def init(rng) -> TrainState:
    params = model.init({"params": rng}, jnp.zeros((1, config.max_len), jnp.int32), jnp.ones((1,), jnp.int32))
    return TrainState.create(params["params"], tx)

  def train_step(state: TrainState, batch, rng):
    def loss_fn(params):
      logits = model.apply({"params": params}, batch["ids"], batch["length"], train=True, rngs={"dropout": rng})
      return losses.cross_entropy(logits, batch["label"], config.label_smoothing).mean(), logits

    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    metrics = {"loss": loss, "accuracy": losses.correct(logits, batch["label"]).mean(),
               "grad_norm": optax.global_norm(grads), "learning_rate": learning_rate(state.step)}
    return state.apply_gradients(tx, grads), metrics

  def eval_step(state: TrainState, batch):
    logits = model.apply({"params": state.params}, batch["ids"], batch["length"])
    return losses.masked_sums(logits, batch["label"], batch["mask"])

  data = (f"{len(train.sentences):,} train sentences ({cut} cut to {config.max_len} tokens), "
          f"{len(eval_arrays['label'])} {config.eval_split}; " if train is not None else "")
  summary = (f"SST-2: {data}{config.tokenizer.model_type} tokenizer of {tok.vocab_size:,} pieces; "
             f"Transformer encoder {config.model.num_layers}x{config.model.embed_dim}")
  return Task(name="sentiment", init=init, train_step=train_step, source=source, num_train_steps=num_steps,
              evaluators=[DatasetEvaluator(eval_step, lambda: pipeline.padded_batches(load_eval(),
                                                                                       config.eval_batch_size))],
              units_per_step={"examples": config.batch_size}, facts=facts, summary=summary)


def score(config, facts: dict, params, sentences: list[str]) -> np.ndarray:
  """(N, 2) class probabilities (negative, positive) of `sentences` with a trained run's `params`."""
  if not sentences or any(not s.strip() for s in sentences):
    raise UserError("Give at least one non-empty sentence to score.")
  tok = tokenizer.Tokenizer.from_facts(facts["tokenizer"])
  ids, lengths = tok.encode_batch(sentences, config.max_len)
  model = make_model(config, tok.vocab_size)
  probs = sharding.on_local_device(lambda p, x, n: jax.nn.softmax(model.apply({"params": p}, x, n)))
  return np.asarray(probs(params, ids, np.maximum(np.minimum(lengths, config.max_len), 1)))

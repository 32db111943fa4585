"""Sequence taggers for named-entity recognition: per-token emission scores, then a linear-chain CRF
(jaxai.ops.crf) or independent per-token softmaxes.

Inputs (a dict; B sentences, T tokens, C characters per token):
  words (B, T) int     word ids (lower-cased, digits -> 0; 0 = padding, 1 = unknown)
  cases (B, T) int     the word's casing class (jaxai.data.words.CASES), so lower-casing loses nothing
  chars (B, T, C) int  character ids of each word (0 = padding, 1 = unknown), truncated to C
  length (B,) int      real tokens per sentence (a left-aligned prefix, >= 1)

  WordFeatures        Lample et al. (2016)'s token representation: word embedding, the final states of a
                      bidirectional LSTM over the word's characters, and a casing embedding, concatenated.
  BiLSTMEncoder       a bidirectional LSTM over the WordFeatures (Lample et al.'s tagger).
  TransformerEncoder  the same WordFeatures projected to the model width, then jaxai.models.text's
                      bidirectional Transformer encoder.
  Tagger              encoder -> dropout -> Dense emissions (B, T, K); `loss` is the per-sentence negative
                      log-likelihood (CRF) or summed token cross-entropy; `decode` the Viterbi (or argmax) tags.
"""
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
import optax

from jaxai.models import text
from jaxai.ops import crf

Dtype = Any


class WordFeatures(nn.Module):
  num_words: int
  num_chars: int
  num_cases: int
  word_dim: int = 100
  char_dim: int = 25
  char_hidden: int = 25     # per direction.
  case_dim: int = 8

  @nn.compact
  def __call__(self, inputs):  # -> (B, T, word_dim + 2 * char_hidden + case_dim)
    words, chars = inputs["words"], inputs["chars"]
    b, t, c = chars.shape
    word = nn.Embed(self.num_words, self.word_dim, name="word_embed")(words)
    case = nn.Embed(self.num_cases, self.case_dim, name="case_embed")(inputs["cases"])
    char = nn.Embed(self.num_chars, self.char_dim, name="char_embed")(chars.reshape(b * t, c))
    char_lengths = jnp.maximum((chars.reshape(b * t, c) > 0).sum(-1), 1)  # padded tokens: 1 pad char.
    (forward, backward), _ = nn.Bidirectional(
        nn.RNN(nn.OptimizedLSTMCell(self.char_hidden), name="char_forward"),
        nn.RNN(nn.OptimizedLSTMCell(self.char_hidden), name="char_backward"),
        return_carry=True, name="char_lstm")(char, seq_lengths=char_lengths)
    # Each direction's carry is (cell, hidden); its hidden state after the whole word.
    char_final = jnp.concatenate([forward[1], backward[1]], -1).reshape(b, t, 2 * self.char_hidden)
    return jnp.concatenate([word, char_final, case], -1)


class BiLSTMEncoder(nn.Module):
  features: WordFeatures
  hidden: int = 100         # per direction.
  dropout_rate: float = 0.5

  @nn.compact
  def __call__(self, inputs, train: bool = False):  # -> (B, T, 2 * hidden)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(self.features(inputs))
    return nn.Bidirectional(nn.RNN(nn.OptimizedLSTMCell(self.hidden), name="forward"),
                            nn.RNN(nn.OptimizedLSTMCell(self.hidden), name="backward"),
                            name="lstm")(x, seq_lengths=inputs["length"])


class TransformerEncoder(nn.Module):
  features: WordFeatures
  max_len: int
  num_layers: int = 2
  num_heads: int = 4
  embed_dim: int = 128
  dropout_rate: float = 0.1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, inputs, train: bool = False):  # -> (B, T, embed_dim)
    x = nn.Dense(self.embed_dim, name="project")(self.features(inputs))
    mask = text.length_mask(inputs["length"], x.shape[1])
    return text.TransformerEncoder(self.max_len, self.num_layers, self.num_heads, self.embed_dim,
                                   self.dropout_rate, self.dtype, name="transformer")(x, mask, train)


class Tagger(nn.Module):
  encoder: nn.Module
  tag_names: Sequence[str]  # IOB2 tags; their order is the tag ids'.
  use_crf: bool = True
  dropout_rate: float = 0.5

  def setup(self):
    self.emit = nn.Dense(len(self.tag_names), name="emissions")
    self.dropout = nn.Dropout(self.dropout_rate)
    if self.use_crf:  # IOB2's constraints (no I-X after O or another type) hold in training and decoding.
      self.crf = crf.CRF(len(self.tag_names), allowed=crf.allowed_transitions_iob2(self.tag_names),
                         allowed_start=crf.allowed_starts_iob2(self.tag_names))

  def emissions(self, inputs, train: bool = False):  # -> (B, T, K) float32
    h = self.dropout(self.encoder(inputs, train), deterministic=not train)
    return self.emit(h).astype(jnp.float32)

  def loss(self, inputs, tags, train: bool = False):
    """(B,) per-sentence loss: the CRF's negative log-likelihood of the gold path, or without a CRF the
    sum of the tokens' cross-entropies (both in nats per sentence)."""
    scores = self.emissions(inputs, train)
    mask = text.length_mask(inputs["length"], tags.shape[1])
    if self.use_crf:
      return -self.crf(scores, tags, mask)
    per_token = optax.softmax_cross_entropy_with_integer_labels(scores, tags)
    return jnp.where(mask, per_token, 0.0).sum(-1)

  def decode(self, inputs):
    """(B, T) int32 tags (0 past each length): the CRF's Viterbi path, or each token's argmax."""
    scores = self.emissions(inputs)
    mask = text.length_mask(inputs["length"], scores.shape[1])
    if self.use_crf:
      return self.crf.decode(scores, mask)[0]
    return jnp.where(mask, jnp.argmax(scores, -1), 0).astype(jnp.int32)

  def __call__(self, inputs, tags, train: bool = False):  # init traces every parameter through here.
    return self.loss(inputs, tags, train)


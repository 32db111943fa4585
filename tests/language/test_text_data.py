"""Text data for the language tasks: the SentencePiece tokenizer, the SST-2 reader, word-level tagger
inputs, and the bidirectional encoder's padding mask. Reads ../shared/data/sst2 (no text is committed)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai.data import sst2, tokenizer, words
from jaxai.errors import UserError
from jaxai.models import text
from tests.helpers import RAW_DATA_DIR

SST2 = RAW_DATA_DIR / "sst2"


@pytest.fixture(scope="module")
def sst2_train():
  return sst2.read_split(SST2, "train")


def test_sst2_splits_have_glues_counts_and_labels(sst2_train):
  dev = sst2.read_split(SST2, "dev")
  assert len(sst2_train.sentences) == 67_349 and len(dev.sentences) == 872
  assert (dev.labels.count(0), dev.labels.count(1)) == (428, 444)
  assert set(sst2.read_split(SST2, "test").labels) == {-1}  # GLUE hides the test labels.


def test_a_missing_sst2_file_is_named_with_how_to_get_it(tmp_path):
  with pytest.raises(UserError, match=r"dev\.tsv.*does not exist.*glue/sst2"):
    sst2.read_split(tmp_path, "dev")


def test_the_tokenizer_round_trips_its_training_text_and_trains_the_same_model_twice(sst2_train):
  sentences = sst2_train.sentences[:2000]
  tok = tokenizer.Tokenizer.train(sentences, vocab_size=500, model_type="unigram")
  assert [tok.decode(tok.encode(s)) for s in sentences] == sentences
  assert tokenizer.Tokenizer.train(sentences, 500, "unigram").model_proto == tok.model_proto
  restored = tokenizer.Tokenizer.from_facts(tok.to_facts())  # what a run saves in facts.json
  assert restored.encode(sentences[7]) == tok.encode(sentences[7])
  ids, lengths = tok.encode_batch(sentences[:3], max_len=4, eos=True)
  assert ids.shape == (3, 4) and (lengths == [len(tok.encode(s)) + 1 for s in sentences[:3]]).all()
  bpe = tokenizer.Tokenizer.train(sentences, 500, "bpe")
  assert [bpe.decode(bpe.encode(s)) for s in sentences[:200]] == sentences[:200]


def test_tokenizer_settings_that_cannot_work_are_clear_errors(sst2_train):
  with pytest.raises(UserError, match="model_type='wordpiece' is unknown"):
    tokenizer.Tokenizer.train(sst2_train.sentences[:10], 100, "wordpiece")
  with pytest.raises(UserError, match="Lower the vocabulary size"):
    tokenizer.Tokenizer.train(sst2_train.sentences[:10], 50_000)


def test_tagger_inputs_keep_casing_digits_and_truncate_as_documented():
  sentences = [["EU", "rejects", "German", "call"], ["In", "1996", "x7", "McDonald", "--", "ok"]]
  vocab, chars = words.word_vocab(sentences, 1), words.char_vocab(sentences)
  arrays = words.encode_sentences(sentences, vocab, chars, max_len=5, max_word_chars=3)
  assert arrays["length"].tolist() == [4, 5]  # the second is cut to 5 tokens.
  assert [words.CASES[c] for c in arrays["cases"][1]] == ["title", "digits", "has_digit", "title", "other"]
  assert vocab.items[arrays["words"][1, 1]] == "0000"  # digits -> 0, lower-cased.
  assert "".join(chars.items[i] for i in arrays["chars"][1, 3]) == "McD"
  assert (arrays["words"][0, 4], arrays["chars"][0, 4].sum()) == (0, 0)  # padding.
  assert words.Vocab(vocab.items).id("never-seen") == 1


def test_the_encoder_ignores_padding_and_sees_both_directions():
  encoder = text.TransformerEncoder(max_len=12, num_layers=1, num_heads=2, embed_dim=8, dropout_rate=0.0)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 12, 8)), jnp.float32)
  mask = text.length_mask(jnp.asarray([5, 12]), 12)
  params = encoder.init(jax.random.key(0), x, mask)
  out = encoder.apply(params, x, mask)
  other_padding = x.at[0, 5:].set(3.0)
  np.testing.assert_allclose(encoder.apply(params, other_padding, mask)[0, :5], out[0, :5], atol=1e-5)
  later = x.at[1, 11].multiply(-1.0)  # the last token changes the first position: attention is not causal.
  assert np.abs(encoder.apply(params, later, mask)[1, 0] - out[1, 0]).max() > 1e-4

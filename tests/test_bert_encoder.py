import numpy as np

from agentmem.encoders.bert import BertMeanEncoder

TEXTS = [
    "storm lamp",
    "What did Caroline do last week at the LGBTQ support group?",
    "Émile's café — naïve façade, 日本語 and emoji 🙂",
    "",
    "tide " * 400,  # longer than the 256-token limit: truncated like encode truncates
]


def test_lean_encoder_equals_sentence_transformers(minilm):
    model = minilm._load()
    lean = BertMeanEncoder.from_sentence_transformer(model)
    assert lean is not None
    ours = lean.encode(TEXTS)
    theirs = model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=2e-6)


def test_small_batches_take_the_lean_path_and_large_ones_sentence_transformers(minilm):
    few = minilm.embed(TEXTS[:2])
    many = minilm.embed(TEXTS[:2] * 8)
    np.testing.assert_allclose(few, many[:2], atol=2e-6)


def test_other_stacks_are_refused(minilm):
    model = minilm._load()
    assert BertMeanEncoder.from_sentence_transformer([model[0], model[1]]) is None

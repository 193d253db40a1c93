import numpy as np

from trainer.model.text import TEXT_DIM, embed_texts


def test_packaged_sentence_encoder_gives_unit_vectors_that_reflect_meaning():
    v = embed_texts(["Coffee Shop", "Café", "Subway", "", "Coffee Shop"])
    assert v.shape == (5, TEXT_DIM) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v[[0, 1, 2]], axis=1), 1.0, rtol=1e-5)
    assert (v[3] == 0).all()  # no text: zeros, the model swaps in its learned "no text" vector
    np.testing.assert_array_equal(v[0], v[4])
    assert v[0] @ v[1] > v[0] @ v[2]

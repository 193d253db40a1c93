from streams.predictor import MIN_CHUNK, ModelShape


def test_a_batch_is_spread_over_the_instances():
    shape = ModelShape(seq_len=100, top_k=10, max_batch=256, instances=2)
    assert shape.chunk_size(256) == 128
    assert shape.chunk_size(255) == 128  # two requests, not three


def test_small_batches_stay_whole_and_large_ones_respect_the_batch_limit():
    assert ModelShape(100, 10, 256, instances=4).chunk_size(8) == MIN_CHUNK
    assert ModelShape(100, 10, 64, instances=2).chunk_size(1000) == 64
    assert ModelShape(100, 10, 256, instances=1).chunk_size(200) == 200

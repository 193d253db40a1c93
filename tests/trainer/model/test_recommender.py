import numpy as np

from tests.trainer.conftest import tiny_config
from trainer.baselines.user_frequency import UserFrequency
from trainer.batches import history_batches
from trainer.data import PAD
from trainer.evaluate import rank_events
from trainer.model import ClickcastConfig, ClickcastRecommender
from trainer.model.explain import attribution
from trainer.model.recommender import as_histories


def test_scores_cover_every_item_and_training_curves_are_recorded(fitted, habits):
    ck, split = habits
    batch = next(history_batches(ck, split.test, fitted.config.max_len, 32))
    scores = fitted.score(batch)
    assert scores.shape == (len(batch), ck.vocab.n_items) and scores.dtype == np.float32
    assert np.isfinite(scores[:, 2:]).all()
    assert len(fitted.history["train_loss"]) >= 1 and len(fitted.history["pretrain_loss"]) == 1
    assert fitted.history["train_loss"][-1] < fitted.history["train_loss"][0]


def test_learns_the_habit_better_than_the_users_frequency(fitted, habits):
    ck, split = habits
    freq = UserFrequency()
    freq.fit(ck, split)
    ours = rank_events(fitted, ck, split, "test").metrics()
    theirs = rank_events(freq, ck, split, "test", max_len=fitted.config.max_len).metrics()
    # Users cycle through 4 places: the order is learnable, frequency alone cannot see it.
    assert ours["acc@1"] > theirs["acc@1"] + 0.1, (ours, theirs)


def test_save_load_round_trip_gives_identical_scores(fitted, habits, tmp_path):
    ck, split = habits
    fitted.save(tmp_path / "m")
    loaded = ClickcastRecommender.load(tmp_path / "m")
    assert loaded.config == fitted.config and loaded.history == fitted.history
    batch = next(history_batches(ck, split.test, fitted.config.max_len, 64))
    np.testing.assert_array_equal(loaded.score(batch), fitted.score(batch))


def test_explanations_point_at_real_history_events(fitted, habits):
    ck, split = habits
    batch = next(history_batches(ck, split.test, fitted.config.max_len, 16))
    batch.items[0], batch.ts[0], batch.lat[0], batch.lon[0] = PAD, 0, 0, 0  # a cold user: nothing to point at
    weights = fitted.attribution(batch)
    assert weights.shape == batch.items.shape
    np.testing.assert_allclose(weights[1:].sum(1), 1.0, rtol=1e-5)
    assert (weights[batch.items == PAD] == 0).all() and (weights[0] == 0).all()


def test_an_explanation_is_of_the_item_the_answer_ranks_first(fitted, habits):
    """Triton's graph ranks the items; its first may differ from the torch network's in a near-tie, and the
    explanation must then be of the graph's."""
    ck, split = habits
    batch = next(history_batches(ck, split.test, fitted.config.max_len, 16))
    h = as_histories(batch)
    scores = fitted.model.log_probs(h).numpy()
    first, second = np.argsort(-scores, axis=1)[:, 0], np.argsort(-scores, axis=1)[:, 1]
    np.testing.assert_array_equal(attribution(fitted.model, h, top=first), attribution(fitted.model, h))
    assert not np.allclose(attribution(fitted.model, h, top=second), attribution(fitted.model, h))


def test_sasrec_variant_uses_item_ids_only(habits):
    ck, split = habits
    cfg = ClickcastConfig.sasrec()
    assert not (cfg.use_time or cfg.use_geo or cfg.use_text or cfg.use_repeat) and cfg.pretrain_epochs == 0
    rec = ClickcastRecommender(
        tiny_config(**{k: getattr(cfg, k) for k in ("name", "use_time", "use_geo", "use_repeat", "pretrain_epochs")})
    )
    rec.fit(ck, split)
    assert rec.name == "sasrec"
    assert set(rec.model.net.embed.codes) == set() and rec.model.net.repeat is None
    batch = next(history_batches(ck, split.test, rec.config.max_len, 8))
    assert rec.score(batch).shape == (8, ck.vocab.n_items)


def test_adversarial_training_fits_and_scores(habits, monkeypatch):
    import trainer.model.finetune as finetune

    perturbed, steps = [], []
    fgsm, clip = finetune.fgsm_backward, finetune.nn.utils.clip_grad_norm_

    def counted_fgsm(loss_of, shape, eps, real, weight):
        perturbed.append((eps, weight))
        return fgsm(loss_of, shape, eps, real, weight)

    def counted_step(*args, **kwargs):  # once per optimizer step (no pre-training here)
        steps.append(1)
        return clip(*args, **kwargs)

    monkeypatch.setattr(finetune, "fgsm_backward", counted_fgsm)
    monkeypatch.setattr(finetune.nn.utils, "clip_grad_norm_", counted_step)
    ck, split = habits
    cfg = tiny_config(adversarial=True, pretrain_epochs=0, finetune_epochs=2, adv_eps=0.07, adv_weight=0.3)
    rec = ClickcastRecommender(cfg)
    rec.fit(ck, split)
    assert rec.history["train_loss"][-1] < rec.history["train_loss"][0]
    # Every fine-tuning step took the perturbed loss too, with the configured radius and weight.
    assert steps and perturbed == [(0.07, 0.3)] * len(steps)
    batch = next(history_batches(ck, split.test, rec.config.max_len, 8))
    assert np.isfinite(rec.score(batch)[:, 2:]).all()


def test_the_final_fit_trains_the_epochs_validation_chose(habits):
    ck, split = habits
    rec = ClickcastRecommender(tiny_config(finetune_epochs=3, patience=3))
    rec.fit(ck, split)
    best = int(np.argmax(rec.history["val_mrr"])) + 1
    assert rec.chosen_epochs == best
    no_validation = type(split)(train=split.train | split.val, val=np.zeros_like(split.val), test=split.test)
    rec.fit(ck, no_validation)
    assert len(rec.history["train_loss"]) == best and rec.history["val_mrr"] == []


def test_the_visit_prior_is_chosen_on_validation_and_saved_with_the_model(fitted, habits, tmp_path):
    from trainer.model import visit_prior

    cfg = fitted.config
    ck, split = habits
    network = fitted.model.network_log_probs
    batches = (
        (network(as_histories(b)), b.items, b.ts, b.targets)
        for b in history_batches(ck, split.val, cfg.max_len, cfg.eval_batch_size)
    )
    weight, tau, _ = visit_prior.choose(batches)  # ties go to (0.0, TAU_DAYS[0]), not to the config's defaults
    assert (cfg.visit_prior_weight, cfg.visit_prior_tau_days) == (weight, tau)
    fitted.save(tmp_path / "m")
    assert ClickcastRecommender.load(tmp_path / "m").config == cfg
    batch = next(history_batches(ck, split.test, cfg.max_len, 32))
    plain = fitted.without_visit_prior()
    assert plain.config.visit_prior_weight == 0.0 and fitted.config.visit_prior_weight == cfg.visit_prior_weight
    expected = fitted.model.network_log_probs(as_histories(batch)).numpy()
    np.testing.assert_allclose(plain.score(batch), expected, rtol=1e-6)

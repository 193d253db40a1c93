"""The served scoring path as one ONNX graph, run by ONNX Runtime inside Triton's python backend.

Scoring a request through torch's eager ops is a few hundred small kernels, each with its dispatch: ~2 ms for one
history in a hot loop and ~4 ms when requests come apart (cold caches), most of a low-load request's time in Triton.
`ScoringGraph` is `ClickcastModel.log_probs` followed by top-k, written so that a trace exports it whole: the
encoder at the newest event, the softmax over all items, the repeat distribution over the history, the gate's mixture
and the visit prior. The repeat path is dense here ([B, L, L] same-item matrices) where training keeps sparse
candidate lists: for one query a row, the two are the same sums. Its inputs are the numpy codes that the torch path
computes too (`graph_inputs`), so both score from one feature implementation; `export_graph` checks the exported
graph against the torch path before it is written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from trainer.data import PAD, UNK
from trainer.model import visit_prior
from trainer.model.bundle import ClickcastModel
from trainer.model.inputs import Histories
from trainer.model.network import NEG_INF, additive_mask, attendable, attention_mask, newest_state

GRAPH_FILE = "model.onnx"
OPSET = 18
PAIR_CODES = ("valid", "recency", "hour_diff", "day_diff", "dist")
TOLERANCE = 1e-4  # between the graph's scores and the torch path's (the Triton parity test allows the same)


def _code_names(model: ClickcastModel) -> list[str]:
    """The event codes the embedding sums, in its order."""
    return ["items", *model.net.embed.codes]


def input_names(model: ClickcastModel) -> list[str]:
    cfg, names = model.cfg, [*_code_names(model), "positions"]
    if cfg.use_repeat:
        names += PAIR_CODES
    if cfg.use_geo:
        names.append("item_dist")
    if cfg.visit_prior_weight:
        names.append("lift")
    return names


def graph_inputs(model: ClickcastModel, h: Histories) -> dict[str, np.ndarray]:
    """The graph's inputs for raw histories: what the torch path scores from (`ClickcastModel.scoring_inputs`), and
    the visit prior's lift."""
    cfg, s = model.cfg, model.scoring_inputs(h)
    out = {name: s.codes[name] for name in _code_names(model)}
    out["positions"] = np.arange(s.first, s.first + s.h.items.shape[1], dtype=np.int64)[None, :]
    if cfg.use_repeat:
        out |= {name: s.queries.pairs[name].numpy() for name in PAIR_CODES}
    if cfg.use_geo:
        out["item_dist"] = s.queries.item_dist.numpy()
    if cfg.visit_prior_weight:
        shares = visit_prior.visit_shares(s.h.items, s.h.ts, cfg.visit_prior_tau_days)
        out["lift"] = visit_prior.lift(shares, cfg.visit_prior_weight)
    return {name: np.ascontiguousarray(out[name]) for name in input_names(model)}


def _positions(row: torch.Tensor) -> torch.Tensor:
    """0..n-1 for a [n] tensor, from its data: a trace keeps n dynamic (an arange of a shape may not)."""
    return torch.cumsum(torch.ones_like(row), 0) - 1


def _logaddexp(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(exp(a) + exp(b)), -inf where both are (exported as plain ops)."""
    top = torch.maximum(a, b)
    top = torch.where(torch.isinf(top), torch.zeros_like(top), top)
    return top + torch.log(torch.exp(a - top) + torch.exp(b - top))


class ScoringGraph(nn.Module):
    """(top-k log p [B, k], their item indices [B, k]) after each row's newest event; inputs as `graph_inputs`."""

    def __init__(self, model: ClickcastModel, top_k: int):
        super().__init__()
        net, cfg = model.net.eval(), model.cfg
        self.net, self.cfg, self.top_k = net, cfg, top_k
        self.names = input_names(model)
        self.code_names = _code_names(model)
        with torch.no_grad():
            tables = [net.embed.items.all_items(), *(table.weight for table in net.embed.codes.values())]
            self.register_buffer("table", torch.cat(tables))
        self.offsets = np.cumsum([0, *(len(t) for t in tables[:-1])]).tolist()

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = dict(zip(self.names, tensors, strict=True))
        items = x["items"]
        # EventEmbedding's sum in its order, a gather per table: its one embedding_bag exports with the batch frozen,
        # and a stacked gather + sum runs slowly in ONNX Runtime.
        embedded = self.table[items]
        for name, offset in zip(self.code_names[1:], self.offsets[1:], strict=True):
            embedded = embedded + self.table[x[name] + offset]
        real = attendable(items)
        layers = self.net.encoder.encoder.layer
        # Positions as an input: encode_newest's first_position is a Python int, which a trace would freeze.
        memory = self.net.encoder.embeddings(inputs_embeds=embedded, position_ids=x["positions"])
        if len(layers) > 1:
            below = attention_mask(real, causal=True)
            for layer in layers[:-1]:
                memory = layer(memory, below)
        hq = newest_state(layers[-1], memory, additive_mask(real[:, None, None, :]))

        log_p = self.net.generation_logits(hq, x.get("item_dist")).log_softmax(-1)
        if self.cfg.use_repeat:
            log_p = self._mix_repeat(log_p, items, memory, hq, x)
        if self.cfg.visit_prior_weight:
            log_p = log_p.scatter(1, items, log_p.gather(1, items) + x["lift"]).log_softmax(-1)
        return torch.topk(log_p, self.top_k, dim=-1)

    def _mix_repeat(
        self,
        log_gen: torch.Tensor,
        items: torch.Tensor,
        memory: torch.Tensor,
        hq: torch.Tensor,
        x: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """`RepeatHead` + `ClickcastNet.next_item` for queries at the newest column, dense over the history: each item's
        candidate sits at its first position, and its visits add their counts there (scatter-adds of [B, L])."""
        head, valid = self.net.repeat, x["valid"]
        validf = valid.float()
        current = items[:, -1:]
        # Each position's first position of the same item (argmax: the first of the maxima), and its flat slot.
        group = (items[:, :, None] == items[:, None, :]).float().argmax(-1)
        first = valid & (group == _positions(items[0]))
        slot = (_positions(items[:, 0]) * items.shape[1])[:, None] + group
        zero = torch.zeros_like(items[:, :1])
        follows = (torch.cat([zero, items[:, :-1]], 1) == current) & torch.cat([zero.bool(), valid[:, :-1]], 1)

        # Each visit counts its codes, "came right after the current place" and itself at its candidate's slot.
        n_stats = head.n_stats
        codes = [x[name] + offset for name, offset in head.code_offsets.items()]
        codes += [torch.full_like(items, n_stats - 2), torch.full_like(items, n_stats - 1)]
        counts = [validf] * (len(codes) - 2) + [(follows & valid).float(), validf]
        stats = torch.zeros_like(validf)[..., None].expand(-1, -1, n_stats).reshape(-1)
        where = torch.cat([(slot * n_stats + code).reshape(-1) for code in codes])
        stats = stats.scatter_add(0, where, torch.cat([count.reshape(-1) for count in counts]))
        stats = stats.reshape(items.shape[0], items.shape[1], n_stats)
        # head.features on [log1p(stats), one-hot distance, here] with the one-hot as a column lookup.
        w = head.features.weight
        hidden = (
            stats.log1p() @ w[:, :n_stats].T
            + w[:, n_stats : n_stats + head.n_dist].T[x["dist"]]
            + (items == current).float()[..., None] * w[:, -1]
            + head.features.bias
        )
        score = head.out(hidden + head.context(hq)[:, None, :]).squeeze(-1)
        match = (head.query(hq)[:, None, :] * head.key(memory)).sum(-1) * head.scale
        has_history = valid.any(-1, keepdim=True)
        shift = torch.where(has_history, torch.where(valid, match, NEG_INF).amax(-1, keepdim=True), 0.0)
        visit_mass = (torch.exp(match - shift) * validf).reshape(-1)
        mass = torch.zeros_like(validf).reshape(-1).scatter_add(0, slot.reshape(-1), visit_mass).reshape(items.shape)
        score = torch.where(first, score + torch.log(mass) + shift, NEG_INF)
        top = torch.where(has_history, score.amax(-1, keepdim=True), 0.0)
        weight = torch.exp(score - top)
        weight = weight / torch.where(has_history, weight.sum(-1, keepdim=True), 1.0)
        repeat = weight.gather(1, group) * validf  # each visit: its item's weight

        gate = head.gate(hq)
        log_gen_gate = torch.where(has_history, nn.functional.logsigmoid(gate), 0.0)
        log_repeat_gate = torch.where(has_history, nn.functional.logsigmoid(-gate), NEG_INF)
        log_p = log_gen_gate + log_gen
        mixed = _logaddexp(log_p.gather(1, items), log_repeat_gate + torch.log(repeat))
        return log_p.scatter(1, items, mixed)  # repeated items write equal values


def sample_histories(model: ClickcastModel, rows: int = 6, seed: int = 0) -> Histories:
    """Histories over the model's items for tracing and checking: repeats, an unknown item, a history of three
    events and a cold user (rows 1, 2 and 3)."""
    rng = np.random.default_rng(seed)
    length = model.cfg.max_len
    known = np.arange(UNK + 1, len(model.item_ids))
    items = rng.choice(known, size=(rows, length))
    items[:, length // 2 :] = rng.choice(items[:, : length // 2].ravel(), size=(rows, length - length // 2))
    items[1:2, -3] = UNK  # slices: fewer rows just go without
    items[2:3, : length - 3] = PAD
    items[3:4] = PAD
    ts = 1.36e9 + np.cumsum(rng.uniform(60, 2 * 86400, (rows, length)), axis=1)
    lat, lon = model.item_lat[items].astype(np.float32), model.item_lon[items].astype(np.float32)
    pad = items == PAD
    ts[pad], lat[pad], lon[pad] = 0.0, 0.0, 0.0
    return Histories(items=items, ts=ts, lat=lat, lon=lon)


def export_graph(model: ClickcastModel, path: str | Path, top_k: int) -> None:
    """Trace `ScoringGraph` to ONNX at `path`; raises if ONNX Runtime's top-k differs from the torch path's."""
    import warnings

    graph = ScoringGraph(model, top_k).eval()
    sample = sample_histories(model)
    inputs = graph_inputs(model, sample)
    dynamic = {name: {0: "batch", 1: "length"} for name in inputs} | {"positions": {1: "length"}}
    if "item_dist" in dynamic:
        dynamic["item_dist"] = {0: "batch"}
    with torch.no_grad(), warnings.catch_warnings():
        # transformers' attention checks `is_causal` in Python; a mask is always passed, so False is right.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module="transformers")
        # The TorchScript exporter (deprecated, still in torch 2.13): the dynamo one needs onnxscript, not a dependency.
        torch.onnx.export(
            graph,
            tuple(torch.from_numpy(inputs[name]) for name in graph.names),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=graph.names,
            output_names=["scores", "top"],
            dynamic_axes=dynamic | {"scores": {0: "batch"}, "top": {0: "batch"}},
        )
    scorer = GraphScorer(path, model)
    # Batch 1, three events alone, a cold user alone (one column after trimming), all together.
    for rows in (slice(0, 1), slice(2, 3), slice(3, 4), slice(None)):
        h = Histories(*(getattr(sample, f)[rows] for f in ("items", "ts", "lat", "lon")))
        scores, top = scorer.top_k(h)
        log_p = model.log_probs(h).numpy()
        # The best scores, and the model's own scores of the items the graph picked (ties may order differently).
        want = -np.sort(-log_p, axis=-1)[:, :top_k]
        picked = np.take_along_axis(log_p, top, axis=-1)
        if not (
            np.allclose(scores, want, atol=TOLERANCE, rtol=0) and np.allclose(picked, scores, atol=TOLERANCE, rtol=0)
        ):
            raise RuntimeError(f"the exported graph's top {top_k} differs from the model's (rows {rows})")


class GraphScorer:
    """An ONNX Runtime session on an exported `ScoringGraph`, one thread (one model instance per core)."""

    def __init__(self, path: str | Path, model: ClickcastModel):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.model = model
        self.k = int(self.session.get_outputs()[0].shape[1])  # the top-k the graph was exported with

    def top_k(self, h: Histories) -> tuple[np.ndarray, np.ndarray]:
        """(log p float32 [B, k], item indices int64 [B, k]), best first."""
        scores, top = self.session.run(None, graph_inputs(self.model, h))
        return scores, top

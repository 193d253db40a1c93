"""The clickcast network: event embeddings -> BERT encoder -> next-item distribution (softmax over all items,
optionally mixed with the repeat distribution over the history), and the masked-item head for pre-training."""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertConfig, BertModel
from transformers.models.bert.modeling_bert import BertLayer

from trainer.data import PAD, UNK
from trainer.model.config import ClickcastConfig
from trainer.model.embeddings import EventEmbedding
from trainer.model.repeat import RepeatHead, same_item_totals

NEG_INF = float("-inf")
REPEAT_FLOOR = 1e-30


def newest_state(layer: BertLayer, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`layer(h, full_mask)[:, -1]` [B, d] with the query, attention and feed-forward of column L-1 alone
    (`mask`: that column's row of the additive mask, [B, 1, 1, L])."""
    attention = layer.attention.self
    # Sizes from `.shape`, not len(): an ONNX trace keeps them dynamic (trainer/serving/graph.py).
    heads = (h.shape[0], -1, attention.num_attention_heads, attention.attention_head_size)
    newest = h[:, -1:]
    query = attention.query(newest).view(heads).transpose(1, 2)
    key = attention.key(h).view(heads).transpose(1, 2)
    value = attention.value(h).view(heads).transpose(1, 2)
    context = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=attention.scaling)
    out = layer.attention.output(context.transpose(1, 2).reshape(h.shape[0], 1, -1), newest)
    return layer.output(layer.intermediate(out), out)[:, 0]


def attendable(items: torch.Tensor) -> torch.Tensor:
    """[B, L] columns a row's events may attend to: its real events; a row without any (a cold user) attends to
    its newest column alone, so its state does not depend on how many padding columns its batch carries."""
    real = items != PAD
    return torch.cat([real[:, :-1], real[:, -1:] | ~real.any(dim=1, keepdim=True)], dim=1)  # no in-place: ONNX


def attention_mask(real: torch.Tensor, causal: bool) -> torch.Tensor:
    """Additive [B, 1, L, L] mask: a query sees real events, and with `causal` only those not after it."""
    length = real.shape[1]
    allowed = real[:, None, None, :].expand(-1, 1, length, length)
    if causal:
        allowed = allowed & torch.ones(length, length, dtype=torch.bool, device=real.device).tril()
    return additive_mask(allowed)


def additive_mask(allowed: torch.Tensor) -> torch.Tensor:
    """0 where attention is allowed, the most negative float32 elsewhere (what BERT's layers add to scores)."""
    zero = torch.zeros((), dtype=torch.float32, device=allowed.device)
    return torch.where(allowed, zero, torch.finfo(torch.float32).min)


class ClickcastNet(nn.Module):
    def __init__(self, cfg: ClickcastConfig, n_items: int, n_cells: int):
        super().__init__()
        self.cfg = cfg
        self.n_items = n_items
        self.embed = EventEmbedding(cfg, n_items, n_cells)
        bert = BertConfig(
            vocab_size=1,  # inputs arrive as embeddings
            hidden_size=cfg.hidden,
            num_hidden_layers=cfg.layers,
            num_attention_heads=cfg.heads,
            intermediate_size=4 * cfg.hidden,
            hidden_dropout_prob=cfg.dropout,
            attention_probs_dropout_prob=cfg.dropout,
            max_position_embeddings=cfg.max_len,
            type_vocab_size=1,
        )
        bert._attn_implementation = "sdpa"
        self.encoder = BertModel(bert, add_pooling_layer=False)
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        # PAD and UNK are never an answer: added rather than assigned, so that an ONNX trace exports it.
        special = torch.zeros(n_items)
        special[[PAD, UNK]] = NEG_INF
        self.register_buffer("special", special, persistent=False)
        # Query-dependent preference over the distance from the current place to a candidate item.
        self.distance_logits = nn.Linear(cfg.hidden, cfg.n_distance_buckets) if cfg.use_geo else None
        self.repeat = RepeatHead(cfg) if cfg.use_repeat else None

    def encode(
        self,
        codes: dict[str, torch.Tensor],
        causal: bool,
        masked: torch.Tensor | None = None,
        delta: torch.Tensor | None = None,
        first_position: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Input embeddings [B, L, d] (before the encoder's position/LayerNorm), memory [B, L, d] (the last
        layer's input: what the repeat path matches the query against) and contextual states [B, L, d].
        `delta` is added to the input embeddings (adversarial perturbation, attribution); `first_position` is
        the position of column 0 when leading padding columns were trimmed off."""
        mask = attention_mask(attendable(codes["items"]), causal)
        x, memory = self._below_last_layer(codes, mask, masked, delta, first_position)
        return x, memory, self.encoder.encoder.layer[-1](memory, mask)

    def encode_newest(
        self, codes: dict[str, torch.Tensor], first_position: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory [B, L, d] and the causal state of each row's newest event (column L-1) [B, d], as `encode`
        gives them, with the last layer run at that column only: a served prediction needs no other state."""
        real = attendable(codes["items"])
        below = attention_mask(real, causal=True) if len(self.encoder.encoder.layer) > 1 else None
        _, memory = self._below_last_layer(codes, below, None, None, first_position)
        # The newest event sees every real event: its row of the causal mask is the padding mask.
        newest = additive_mask(real[:, None, None, :])
        return memory, newest_state(self.encoder.encoder.layer[-1], memory, newest)

    def _below_last_layer(
        self,
        codes: dict[str, torch.Tensor],
        mask: torch.Tensor | None,
        masked: torch.Tensor | None,
        delta: torch.Tensor | None,
        first_position: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Input embeddings and the last layer's input (`mask` is needed only below the last layer)."""
        x = self.embed(codes, masked)
        if delta is not None:
            x = x + delta
        positions = None
        if first_position:
            positions = torch.arange(first_position, first_position + x.shape[1], device=x.device)[None, :]
        # BertModel.forward's embeddings and layers, called directly: its wrappers (output capture, config
        # merging, mask conversion of an already additive 4-D mask) cost a batch-1 request ~10% of its time.
        h = self.encoder.embeddings(inputs_embeds=x, position_ids=positions)
        for layer in self.encoder.encoder.layer[:-1]:
            h = layer(h, mask)
        return x, h

    def generation_logits(self, hq: torch.Tensor, item_dist: torch.Tensor | None) -> torch.Tensor:
        logits = torch.addmm(self.item_bias + self.special, hq, self.embed.items.all_items().T)
        if self.distance_logits is not None and item_dist is not None:
            logits = logits + self.distance_logits(hq).gather(1, item_dist.long())
        return logits

    def next_item(
        self,
        memory: torch.Tensor,
        hq: torch.Tensor,
        items: torch.Tensor,
        rows: torch.Tensor,
        cols: torch.Tensor,
        pairs: dict[str, torch.Tensor] | None,
        item_dist: torch.Tensor | None,
        targets: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Log p(next item) for the query events (rows, cols) with states `hq` [P, d]: [P] at `targets` if
        given, else [P, n_items]."""
        log_gen = self.generation_logits(hq, item_dist).log_softmax(-1)
        if self.repeat is None or pairs is None:
            return log_gen if targets is None else log_gen.gather(1, targets[:, None]).squeeze(1)
        weights, log_gate = self.repeat(memory, items, rows, cols, hq, pairs)
        history = items[rows]
        if targets is not None:
            repeat = (weights * (history == targets[:, None])).sum(-1)
            # The floor keeps log's gradient finite when the target is not in the history.
            log_repeat = repeat.clamp_min(REPEAT_FLOOR).log()
            log_gen = log_gen.gather(1, targets[:, None]).squeeze(1)
            return torch.logaddexp(log_gate[:, 0] + log_gen, log_gate[:, 1] + log_repeat)
        # Items outside the history have no repeat mass: only the history's columns need the mixture.
        repeat = same_item_totals(history, weights)
        log_p = log_gate[:, :1] + log_gen
        mixed = torch.logaddexp(log_p.gather(1, history), log_gate[:, 1:] + repeat.log())
        return log_p.scatter_(1, history, mixed)  # repeated items write equal values

    def masked_items(self, h: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """Logits [M, n_items] of the items at masked positions (pre-training head, softmax over all items)."""
        return self.generation_logits(h[masked], None)

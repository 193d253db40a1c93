import torch

from trainer.model.repeat import first_occurrence, same_item_totals


def _rows():
    return torch.tensor([[0, 0, 5, 3, 5, 5], [7, 2, 7, 2, 9, 0], [1, 1, 1, 1, 1, 1]])


def test_first_occurrence_points_at_the_first_position_of_the_same_item():
    items = _rows()
    expected = [[row.tolist().index(v) for v in row.tolist()] for row in items]
    assert first_occurrence(items).tolist() == expected


def test_same_item_totals_sums_over_the_row_positions_of_the_same_item():
    items = _rows()
    values = torch.arange(items.numel(), dtype=torch.float32).reshape(items.shape)
    expected = [
        [sum(v for v, other in zip(vals, row, strict=True) if other == item) for item in row]
        for row, vals in zip(items.tolist(), values.tolist(), strict=True)
    ]
    assert same_item_totals(items, values).tolist() == expected

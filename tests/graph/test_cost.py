"""Analytic MACs and parameters equal torch's counts on the built module, for any valid widths."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

import wtc
from tests.helpers import SPECS, spec_id

pytestmark = pytest.mark.unit

# the ImageNet specs are counted at 64 px in the random-widths test: same graph, same formula
SMALL = {p: wtc.load_spec(p) for p in SPECS}
SMALL = {p: (s.scaled(resolution=64) if s.input.resolution > 64 else s) for p, s in SMALL.items()}
GRAPHS = {p: wtc.compile_spec(s) for p, s in SMALL.items()}


def torch_counts(graph, groups=None):
    model = wtc.build_model(graph, groups, init=False).eval()
    res = graph.spec.input.resolution
    x = torch.zeros(1, graph.spec.input.channels, res, res)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() // 2, sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("path", SPECS, ids=spec_id)
def test_base_widths_macs_and_params_match_torch(path):
    graph = wtc.compile_spec(wtc.load_spec(path))
    assert torch_counts(graph) == (wtc.count_macs(graph), wtc.count_params(graph))


@pytest.mark.parametrize("path", SPECS, ids=spec_id)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_widths_macs_and_params_match_torch(path, data):
    graph = GRAPHS[path]
    cap = 96 if graph.spec.input.resolution >= 64 else 160
    # valid widths: a group of a grouped conv (or a shuffle) stays a multiple of its `multiple`
    groups = {}
    for g in graph.free_groups:
        m = graph.groups[g].multiple
        top = max(1, min(cap, 2 * graph.groups[g].base) // m)
        groups[g] = m * data.draw(st.integers(1, top), label=g)
    assert torch_counts(graph, groups) == (wtc.count_macs(graph, groups),
                                           wtc.count_params(graph, groups))


def test_cost_table_sums_to_the_total():
    graph = GRAPHS[SPECS[0]]
    rows = wtc.cost_table(graph)
    assert sum(r["macs"] for r in rows) == wtc.count_macs(graph)
    assert sum(r["params"] for r in rows) == wtc.count_params(graph)

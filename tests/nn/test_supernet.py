"""The slimmable supernet: any group-respecting widths, same outputs and MACs as the extracted
standalone network, no reallocation, BN recalibration per widths."""

from __future__ import annotations

import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import wtc
from tests.helpers import SPECS, spec_id
from wtc.errors import ConfigError, WidthsError
from wtc.nn.bn import recalibrate_bn
from wtc.nn.slimmable import Supernet, supernet_widths
from wtc.widths import steps

pytestmark = pytest.mark.unit

# ImageNet-sized specs run at a reduced resolution (outputs and MACs are compared at the
# resolution the spec is compiled for, so their graphs are re-compiled smaller)
BIG = {"resnet18", "resnet34", "resnet50", "mobilenetv2", "resnext50_32x4d", "regnetx_400mf",
       "regnety_400mf", "shufflenetv2_x1_0", "efficientnet_b0", "convnext_tiny"}


def _graph(path):
    spec = wtc.load_spec(path)
    if spec.name in BIG:
        spec = spec.scaled(resolution=64)
    return wtc.compile_spec(spec)


def _scramble_bn(net):
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.weight.shape, generator=g))
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g))


def _random_widths(graph, net, seed):
    rng = random.Random(seed)
    step = steps(graph)  # the divisor, or a grouped conv's group width
    return {g: step[g] * rng.randint(1, net.max_widths[g] // step[g]) for g in graph.free_groups}


@pytest.mark.parametrize("path", SPECS, ids=spec_id)
def test_supernet_equals_extracted_network(path):
    graph = _graph(path)
    net = Supernet(graph)
    _scramble_bn(net)
    net.eval()
    s = graph.spec.input
    x = torch.randn(1, s.channels, s.resolution, s.resolution)
    base = {g: graph.groups[g].base for g in graph.free_groups}
    for w in (base, _random_widths(graph, net, 0), _random_widths(graph, net, 1)):
        net.set_widths(w)
        with torch.no_grad():
            a = net(x)
            small = net.extract()
            with FlopCounterMode(display=False) as fc:
                b = small(x)
        assert a.shape == (1, graph.spec.classes)
        assert ((a - b).abs().max() / b.abs().max()).item() <= 1e-5
        assert fc.get_total_flops() // 2 == wtc.count_macs(graph, w)
        assert isinstance(small, type(wtc.build_model(graph, w)))
        assert sum(p.numel() for p in small.parameters()) == wtc.count_params(graph, w)


def test_set_widths_reallocates_nothing_and_names_follow_the_spec():
    graph = wtc.compile_spec(wtc.load_spec("specs/tiny/resnet_tiny.yaml"))
    net = Supernet(graph)
    ptrs = {k: v.data_ptr() for k, v in net.state_dict().items()}
    net.set_widths(dict.fromkeys(graph.free_groups, 8))
    net(torch.randn(2, 1, 16, 16))
    assert {k: v.data_ptr() for k, v in net.state_dict().items()} == ptrs
    plain = wtc.build_model(graph, net.max_widths)
    assert list(net.state_dict()) == list(plain.state_dict())
    assert net.max_widths == supernet_widths(graph, 1.5)


def test_widths_beyond_the_supernet_or_groups_are_refused():
    graph = wtc.compile_spec(wtc.load_spec("specs/tiny/resnet_tiny.yaml"))
    net = Supernet(graph, multiplier=1.0)
    g = graph.free_groups[0]
    with pytest.raises(WidthsError, match="exceed the supernet"):
        net.set_widths({**net.max_widths, g: net.max_widths[g] + 8})
    with pytest.raises(WidthsError, match="missing group"):
        net.set_widths({g: 8})
    with pytest.raises(ConfigError, match="multiplier"):
        Supernet(graph, multiplier=0)


def test_recalibrated_bn_goes_into_the_extracted_network():
    graph = wtc.compile_spec(wtc.load_spec("specs/tiny/mbv2_tiny.yaml"))
    net = Supernet(graph)
    s = graph.spec.input
    w = _random_widths(graph, net, 3)
    batches = [torch.randn(8, s.channels, s.resolution, s.resolution) for _ in range(3)]
    net.set_widths(w)
    recalibrate_bn(net, batches)
    small = net.extract()
    # the standalone network recalibrated on the same batches has the same statistics
    ref = net.extract()
    recalibrate_bn(ref, batches)
    for (k, a), (_, b) in zip(small.state_dict().items(), ref.state_dict().items(), strict=True):
        if "running" in k:
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), k
    net.eval()
    small.eval()
    x = torch.randn(2, s.channels, s.resolution, s.resolution)
    with torch.no_grad():
        assert torch.allclose(net(x), small(x), rtol=1e-5, atol=1e-6)


def test_channel_gates_scale_a_whole_group():
    graph = wtc.compile_spec(wtc.load_spec("specs/tiny/resnet_tiny.yaml"))
    net = Supernet(graph).eval()
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        ref = net(x)
        net.channel_gates = {g: torch.ones(v) for g, v in net.max_widths.items()}
        assert torch.equal(net(x), ref)
        # zeroing a block-internal group's channels beyond 8 == running that group at 8
        g = "stage2.block1.conv1"
        gate = torch.ones(net.max_widths[g])
        gate[8:] = 0
        net.channel_gates = {g: gate}
        gated = net(x)
        net.channel_gates = None
        net.set_widths({**net.max_widths, g: 8})
        assert torch.allclose(gated, net(x), atol=1e-6)


@pytest.mark.parametrize("name", ["shufflenetv2_fmnist", "resnet20_fmnist"])
def test_train_mode_step_equals_the_extracted_network(name):
    """In train mode (batch statistics) at non-uniform widths, including odd ShuffleNet stream
    halves (channel shuffle and split of sliced channels): same outputs, same running-statistic
    updates and the same gradients as the extracted standalone network."""
    graph = wtc.compile_spec(wtc.load_spec(f"specs/{name}.yaml"))
    net = Supernet(graph, {g: graph.groups[g].base for g in graph.free_groups})
    _scramble_bn(net)
    s = graph.spec.input
    x = torch.randn(4, s.channels, s.resolution, s.resolution)
    low = {g: max(1, net.max_widths[g] // 8) for g in graph.free_groups}
    for w in (low, _random_widths(graph, net, 2), _random_widths(graph, net, 5)):
        net.set_widths(w)
        net.train()
        small = net.extract()
        net.zero_grad()
        a, b = net(x), small(x)
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5)
        (a.square().sum()).backward()
        (b.square().sum()).backward()
        again = net.extract()  # the supernet's running statistics after its step, sliced
        for (k, v), (_, u) in zip(again.state_dict().items(), small.state_dict().items(),
                                  strict=True):
            assert torch.allclose(v.float(), u.float(), rtol=1e-5, atol=1e-6), k
        sliced = Supernet(graph, net.max_widths, init=False)
        for p, q in zip(sliced.parameters(), net.parameters(), strict=True):
            p.data.copy_(q.grad if q.grad is not None else torch.zeros_like(q))
        grads = sliced.extract(w)  # the supernet's gradients cut to the widths
        for (k, v), (_, p) in zip(grads.named_parameters(), small.named_parameters(),
                                  strict=True):
            assert torch.allclose(v, p.grad, rtol=1e-4, atol=1e-5), k

"""The GPT model: shapes, the padded vocabulary, tied weights, banded attention, presets, sampling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from train.model import GPT, GPTConfig, band_mask, banded_attention


def small(**kw) -> GPTConfig:
    base = dict(vocab_size=100, n_layer=2, n_embd=32, n_head=4, block_size=64, local_window=8)
    base.update(kw)
    return GPTConfig(**base)


def test_forward_shapes_and_real_vocabulary_logits():
    torch.manual_seed(0)
    model = GPT(small())
    assert model.transformer.wte.weight.shape == (128, 32)  # 100 padded up to a multiple of 64
    x = torch.randint(0, 100, (3, 20))
    logits, loss = model(x)
    assert logits.shape == (3, 20, 100) and loss is None  # padded columns sliced off
    logits, loss = model(x, targets=x)
    assert loss.shape == ()
    # the loss is the cross-entropy of a softmax over the 100 real tokens only
    ref = F.cross_entropy(logits.reshape(-1, 100), x.reshape(-1))
    assert torch.allclose(loss, ref)
    full = model.lm_head(model.hidden(x))  # (3, 20, 128)
    assert not torch.allclose(loss, F.cross_entropy(full.reshape(-1, 128), x.reshape(-1)))
    with pytest.raises(ValueError, match="longer than the context"):
        model(torch.zeros(1, 65, dtype=torch.long))


def test_embeddings_are_tied_and_counted_once():
    model = GPT(small())
    assert model.lm_head.weight is model.transformer.wte.weight
    distinct = {id(p): p.numel() for p in model.parameters()}
    assert model.num_params() == sum(distinct.values())
    assert model.num_params(non_embedding=True) == model.num_params() - 128 * 32 - 64 * 32
    # a gradient step on the head moves the embedding: one matrix
    _, loss = model(torch.randint(0, 100, (2, 8)), torch.randint(0, 100, (2, 8)))
    loss.backward()
    assert model.transformer.wte.weight.grad is model.lm_head.weight.grad


def test_layers_alternate_dense_and_banded():
    assert GPT(small(n_layer=4)).layer_kinds() == ["dense", "banded", "dense", "banded"]
    assert GPT(small(n_layer=3, sparse_every=3)).layer_kinds() == ["dense", "dense", "banded"]
    assert GPT(small(n_layer=3, local_window=0)).layer_kinds() == ["dense"] * 3
    assert GPT(small(n_layer=2, local_window=None)).layer_kinds() == ["dense"] * 2


@pytest.mark.parametrize("T,w", [(64, 16), (50, 16), (17, 16), (33, 8), (5, 3)])
def test_banded_attention_equals_dense_with_band_mask(T, w):
    torch.manual_seed(T * 100 + w)
    q, k, v = (torch.randn(2, 3, T, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    got = banded_attention(q, k, v, w)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=band_mask(T, w))
    assert got.shape == (2, 3, T, 8)
    assert torch.allclose(got, want, atol=1e-10)
    # and the gradients agree, so training through the banded path is the same model
    g = torch.randn_like(got)
    grads = torch.autograd.grad(got, (q, k, v), g)
    ref = torch.autograd.grad(want, (q, k, v), g)
    for a, b in zip(grads, ref):
        assert torch.allclose(a, b, atol=1e-10)


def test_band_mask_really_limits_what_a_token_sees():
    torch.manual_seed(1)
    q, k, v = (torch.randn(1, 1, 32, 4) for _ in range(3))
    out = banded_attention(q, k, v, 4)
    v2 = v.clone()
    v2[:, :, 10] += 100.0  # position 10 is visible to queries 10..13 only
    out2 = banded_attention(q, k, v2, 4)
    changed = (out2 - out).abs().amax(dim=-1)[0, 0] > 1e-4
    assert changed.nonzero().flatten().tolist() == [10, 11, 12, 13]


def test_banded_equals_dense_causal_within_the_window():
    torch.manual_seed(2)
    q, k, v = (torch.randn(2, 2, 16, 8) for _ in range(3))
    causal = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(banded_attention(q, k, v, 16), causal, atol=1e-6)
    assert torch.allclose(banded_attention(q, k, v, 40), causal, atol=1e-6)
    # a whole model whose window covers its context is the all-dense model
    torch.manual_seed(3)
    banded = GPT(small(local_window=64))
    dense = GPT(small(local_window=0))
    dense.load_state_dict(banded.state_dict())
    x = torch.randint(0, 100, (2, 64))
    assert torch.allclose(banded(x)[0], dense(x)[0], atol=1e-5)
    # and a narrower window is a different model
    narrow = GPT(small(local_window=8))
    narrow.load_state_dict(banded.state_dict())
    assert not torch.allclose(narrow(x)[0], dense(x)[0], atol=1e-3)


def test_banded_attention_does_a_fraction_of_the_work():
    """Counted in FLOPs (the math kernel, whose matmuls the counter sees): O(T*2w), not O(T^2)."""
    q = k = v = torch.randn(1, 2, 2048, 32)

    def flops(fn):
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            fn()
        return counter.get_total_flops()

    dense = flops(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    band = flops(lambda: banded_attention(q, k, v, 128))
    assert dense == 4 * 2048 * 2048 * 32 * 2
    assert band < dense / 8  # ~2 * 128 keys per query instead of 2048


@pytest.mark.parametrize("name,paper", [("small", 125e6), ("medium", 350e6), ("large", 760e6), ("xl", 1.3e9),
                                        ("2.7b", 2.7e9), ("6.7b", 6.7e9), ("13b", 13e9), ("175b", 175e9)])
def test_gpt3_presets_have_the_papers_sizes(name, paper):
    cfg = GPTConfig.preset(name)
    assert cfg.block_size == 2048 and cfg.vocab_size == 50257 and cfg.padded_vocab_size == 50304
    with torch.device("meta"):  # shapes only: no memory for 175B parameters
        model = GPT(cfg)
    assert abs(model.num_params() - paper) / paper < 0.04


def test_presets_and_overrides():
    tiny = GPTConfig.preset("tiny")
    assert (tiny.n_layer, tiny.n_embd, tiny.n_head, tiny.block_size) == (4, 128, 4, 256)
    with torch.device("meta"):
        assert 9e6 < GPT(GPTConfig.preset("10m")).num_params() < 12e6
    assert GPTConfig.preset("SMALL", n_layer=3).n_layer == 3
    assert GPTConfig.from_dict(tiny.to_dict()) == tiny
    with pytest.raises(ValueError, match="unknown model preset"):
        GPTConfig.preset("huge")
    with pytest.raises(ValueError, match="not a multiple of n_head"):
        GPTConfig.preset("tiny", n_head=3)
    with pytest.raises(ValueError, match="unknown GPTConfig fields"):
        GPTConfig.from_dict({**tiny.to_dict(), "n_layers": 2})


def test_flops_per_token_counts_banded_layers_cheaper():
    dense = GPT(small(local_window=0))
    banded = GPT(small(local_window=8))
    n = dense.num_params() - 64 * 32
    assert dense.estimate_flops_per_token() == 6 * n + 2 * 12 * 32 * 64
    assert banded.estimate_flops_per_token() == 6 * n + 12 * 32 * 64 + 12 * 32 * 16
    assert dense.estimate_flops_per_token(seq_len=16) == 6 * n + 2 * 12 * 32 * 16


def test_generate_greedy_topk_and_stop_token():
    torch.manual_seed(4)
    model = GPT(small()).eval()
    prompt = torch.randint(0, 100, (2, 5))
    greedy = model.generate(prompt, 6, temperature=0)
    assert greedy.shape == (2, 11) and torch.equal(greedy[:, :5], prompt)
    assert torch.equal(model.generate(prompt, 6, top_k=1), greedy)  # top-1 sampling is greedy
    # the greedy token is the argmax of forward()'s last logits
    assert torch.equal(greedy[:, 5], model(prompt)[0][:, -1].argmax(-1))
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    a = model.generate(prompt, 8, generator=g1)
    assert torch.equal(a, model.generate(prompt, 8, generator=g2))
    assert int(a.max()) < 100  # never a padded row of the table
    # stop: once a row emits the stop token it only repeats it; all stopped -> ends early
    stop = int(greedy[0, 5])
    s = model.generate(prompt[:1], 50, temperature=0, stop_token=stop)
    assert s.shape == (1, 6) and int(s[0, -1]) == stop
    # a stop callback finishes a row as well (here after its third new token)
    s = model.generate(prompt, 6, temperature=0, stop_token=99, stop=lambda new: len(new) == 3)
    assert s.shape == (2, 8) and torch.equal(s, greedy[:, :8])
    with pytest.raises(ValueError, match="stop_token"):
        model.generate(prompt, 6, stop=lambda new: True)
    # prompts longer than the context are cropped, not an error
    assert model.generate(torch.zeros(1, 70, dtype=torch.long), 2, temperature=0).shape == (1, 72)


@pytest.mark.slow
def test_kv_cache_gives_the_same_hidden_states_and_generations():
    torch.manual_seed(5)
    cfg = small()
    model = GPT(GPTConfig.preset("tiny", vocab_size=cfg.vocab_size, n_layer=4, n_embd=32, n_head=2,
                                 block_size=24, local_window=4)).eval()
    assert model.layer_kinds() == ["dense", "banded", "dense", "banded"]
    x = torch.randint(0, cfg.vocab_size, (2, 20))
    full = model.hidden(x)
    cache = model.new_cache()
    # the prompt, then a few tokens at once (a band that crosses the cached part), then one by one
    parts = [model.hidden(x[:, :7], cache), model.hidden(x[:, 7:12], cache)]
    parts += [model.hidden(x[:, t:t + 1], cache) for t in range(12, 20)]
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)
    assert cache[1]["k"].shape[2] == 20
    with pytest.raises(ValueError, match="longer than the context"):
        model.hidden(x[:, :5], cache)                   # 25 > 24 positions
    # generation: cached equals recomputed, greedy and sampled, also past the context
    # (from 24 tokens on the window slides and the cache is dropped)
    prompt = x[:, :6]
    for kw in (dict(temperature=0), dict(top_k=20)):
        runs = []
        for use_cache in (True, False):
            g = torch.Generator().manual_seed(3)
            runs.append(model.generate(prompt, 30, generator=g, use_cache=use_cache, **kw))
        assert torch.equal(runs[0], runs[1]), kw


def test_chunked_cross_entropy_matches_torch_with_gradients():
    from train.model import _ChunkedCrossEntropy, cross_entropy

    torch.manual_seed(5)
    n = 2 * _ChunkedCrossEntropy.CHUNK + 37  # several chunks and a ragged one
    x = torch.randn(n, 300, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 300, (n,))
    t[::7] = -1  # ignored positions
    got = cross_entropy(x, t)
    want = F.cross_entropy(x, t, ignore_index=-1)
    assert torch.allclose(got, want, atol=1e-12)
    (g1,) = torch.autograd.grad(got * 3.0, x)
    (g2,) = torch.autograd.grad(want * 3.0, x)
    assert torch.allclose(g1, g2, atol=1e-12)
    assert g1[::7].abs().max() == 0  # ignored rows get no gradient

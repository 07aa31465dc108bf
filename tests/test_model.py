"""Tests for model.py: presets against the paper's table, the architecture's properties, FLOPs."""
import math

import pytest
import torch

from model import GPT, GPTConfig, PRESETS, apply_rotary, describe_presets, flops_per_token, padded_vocab_size

PAPER_SIZES = {'33m': 33e6, '53m': 53e6, '60m': 60e6, '93m': 93e6, '124m': 124e6,
               '151m': 151e6, '166m': 166e6, '210m': 210e6, '360m': 360e6}


def small_config(**overrides):
    settings = dict(vocab_size=320, block_size=32, n_layer=2, n_head=4, n_embd=64, ffw_size=128)
    settings.update(overrides)
    return GPTConfig(**settings)


def small_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return GPT(small_config(**overrides)).eval()


def meta_model(config):
    """Build without allocating memory: enough for counting parameters of the large presets."""
    with torch.device('meta'):
        return GPT(config)


def test_padded_vocab_size():
    assert padded_vocab_size(50257) == 50304
    assert padded_vocab_size(257) == 320
    assert padded_vocab_size(320) == 320
    assert padded_vocab_size(100, multiple=8) == 104


@pytest.mark.parametrize('name', PAPER_SIZES)
def test_paper_presets_match_their_names(name):
    # The names count all parameters (tied embedding once) with vocab 50304. The table gives
    # counts within 1.5 % (33M is the farthest: 33.48M); 2 % leaves no room for a wrong shape.
    count = meta_model(GPTConfig(vocab_size=50304, **PRESETS[name])).num_params()
    assert abs(count - PAPER_SIZES[name]) / PAPER_SIZES[name] < 0.02
    assert PRESETS[name]['n_embd'] // PRESETS[name]['n_head'] == 64


def test_124m_breakdown():
    model = meta_model(GPTConfig(vocab_size=50304, **PRESETS['124m']))
    embedding = model.tok_emb.weight.numel()
    per_layer = sum(p.numel() for p in model.blocks[0].parameters())
    assert embedding == 50304 * 768 and round(embedding / 1e6, 1) == 38.6
    # 4 d^2 attention + 3 d ffw SwiGLU + two norm gains
    assert per_layer == 4 * 768**2 + 3 * 768 * 2048 + 2 * 768 and round(per_layer / 1e6, 2) == 7.08
    assert model.num_params() == embedding + 12 * per_layer + 768  # + final norm
    assert model.num_params(non_embedding=True) == 12 * per_layer + 768


@pytest.mark.parametrize('name, low, high', [('cpu_tiny', 0.9e6, 1.1e6), ('cpu_10m', 9e6, 11e6)])
def test_cpu_presets_sizes(name, low, high):
    count = GPT(GPTConfig(vocab_size=padded_vocab_size(257), **PRESETS[name])).num_params()
    assert low < count < high


def test_config_rejects_bad_head_split():
    with pytest.raises(ValueError, match='not divisible'):
        GPTConfig(n_embd=100, n_head=3)


def test_forward_backward_shapes_and_initial_loss():
    model = small_model()
    idx = torch.randint(0, 320, (3, 32))
    logits, loss = model(idx[:, :-1], targets=idx[:, 1:])
    assert logits.shape == (3, 31, 320) and loss.shape == ()
    # Small init: nearly uniform predictions over the padded vocabulary.
    assert abs(loss.item() - math.log(320)) < 0.05
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    logits, loss = model(idx)
    assert logits.shape == (3, 32, 320) and loss is None


def test_tied_embedding_and_init_std():
    torch.manual_seed(0)
    model = GPT(small_config(n_layer=4, n_embd=256, ffw_size=512))
    assert model.lm_head.weight is model.tok_emb.weight
    assert model.tok_emb.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.blocks[0].attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
    residual_std = 0.02 / math.sqrt(2 * 4)
    for block in model.blocks:
        assert block.attn.proj.weight.std().item() == pytest.approx(residual_std, rel=0.05)
        assert block.mlp.w2.weight.std().item() == pytest.approx(residual_std, rel=0.05)
        assert torch.equal(block.attn_norm.weight, torch.ones(256))
    # centred at 0: each matrix's mean within 4 standard errors (std / sqrt(numel)) of it
    for name, weight in model.named_parameters():
        if weight.dim() == 2:
            assert abs(weight.mean().item()) < 4 * weight.std().item() / weight.numel() ** 0.5, name


def test_checkpoint_holds_only_weights():
    model = small_model()
    keys = set(model.state_dict())
    assert not any('rope' in key for key in keys)
    restored = small_model(seed=1)
    restored.load_state_dict(model.state_dict())
    idx = torch.randint(0, 320, (1, 16))
    assert torch.equal(model(idx)[0], restored(idx)[0])


def test_causality():
    model = small_model()
    idx = torch.randint(0, 320, (2, 20))
    changed = idx.clone()
    changed[:, 12] = (changed[:, 12] + 1) % 320
    before, after = model(idx)[0], model(changed)[0]
    torch.testing.assert_close(before[:, :12], after[:, :12])
    assert not torch.allclose(before[:, 12:], after[:, 12:])


def test_rotary_scores_depend_only_on_relative_position():
    config = small_config(block_size=16)
    model = GPT(config)
    cos, sin = model.rope_cos, model.rope_sin
    torch.manual_seed(0)
    # The same query and key at every position: any change of score is due to the positions.
    q = torch.randn(16).expand(1, 1, 16, 16)
    k = torch.randn(16).expand(1, 1, 16, 16)
    scores = apply_rotary(q, cos, sin)[0, 0] @ apply_rotary(k, cos, sin)[0, 0].T
    for offset in range(-15, 16):  # the scores are constant along every diagonal m - n
        diagonal = torch.diagonal(scores, offset)
        torch.testing.assert_close(diagonal, diagonal[0].expand_as(diagonal), atol=1e-4, rtol=0)
    assert scores.diagonal(1).std() > 0 and not torch.isclose(scores[0, 0], scores[0, 5])
    # a rotation keeps norms, and position 0 is not rotated
    rotated = apply_rotary(q, cos, sin)
    torch.testing.assert_close(rotated.norm(dim=-1), q.norm(dim=-1))
    torch.testing.assert_close(rotated[..., 0, :], q[..., 0, :])


def test_rotary_makes_token_order_matter():
    # Without position information a one-layer causal model's last output would not change when
    # earlier tokens are swapped.
    model = small_model(n_layer=1)
    idx = torch.tensor([[5, 9, 7, 3]])
    swapped = torch.tensor([[9, 5, 7, 3]])
    assert not torch.allclose(model(idx)[0][:, -1], model(swapped)[0][:, -1])


def test_bf16_autocast_forward():
    model = small_model()
    idx = torch.randint(0, 320, (2, 32))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        logits, loss = model(idx[:, :-1], targets=idx[:, 1:])
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    reference = model(idx[:, :-1], targets=idx[:, 1:])[1]
    assert loss.item() == pytest.approx(reference.item(), abs=0.02)
    loss.backward()
    assert model.tok_emb.weight.grad.dtype == torch.float32


def test_too_long_sequence_is_a_clear_error():
    model = small_model()
    with pytest.raises(ValueError, match="^sequence length 33 exceeds the model's block_size 32$"):
        model(torch.zeros(1, 33, dtype=torch.long))


def test_generate_shape_and_cropping():
    model = small_model(block_size=8)
    torch.manual_seed(0)
    prompt = torch.randint(0, 320, (2, 6))
    out = model.generate(prompt, max_new_tokens=10, top_k=5)
    assert out.shape == (2, 16) and torch.equal(out[:, :6], prompt)  # grew past block_size
    assert out.min() >= 0 and out.max() < 320
    # greedy decoding is deterministic and picks the argmax of the last 8 tokens' logits
    greedy = model.generate(out, max_new_tokens=1, temperature=0)
    assert greedy[0, -1] == model(out[:, -8:])[0][0, -1].argmax()
    # top_k=1 sampling equals greedy
    assert torch.equal(model.generate(out, max_new_tokens=3, top_k=1),
                       model.generate(out, max_new_tokens=3, temperature=0))


def test_param_groups_split():
    model = small_model()
    decay, no_decay = model.param_groups(weight_decay=0.1)
    assert decay['weight_decay'] == 0.1 and no_decay['weight_decay'] == 0.0
    ids = lambda group: {id(p) for p in group['params']}
    assert not ids(decay) & ids(no_decay)
    assert ids(decay) | ids(no_decay) == {id(p) for p in model.parameters()}
    assert len(decay['params']) + len(no_decay['params']) == len(list(model.parameters()))
    assert id(model.tok_emb.weight) in ids(no_decay)
    assert {id(b.attn_norm.weight) for b in model.blocks} <= ids(no_decay)
    assert id(model.final_norm.weight) in ids(no_decay)
    # per layer: qkv, proj, w1, w2, w3
    assert len(decay['params']) == 2 * 5 and all(p.dim() == 2 for p in decay['params'])
    assert len(no_decay['params']) == 1 + 2 * 2 + 1


def test_flops_per_token_by_hand():
    config = GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32, ffw_size=96)
    flops = flops_per_token(config, seq_len=16)
    # non-embedding parameters per layer: 4*32*32 + 3*32*96 + 2*32 = 4096 + 9216 + 64 = 13376;
    # two layers and the final norm: 26752 + 32 = 26784
    assert flops['six_n'] == 6 * 26784 == 6 * GPT(config).num_params(non_embedding=True)
    # forward per sequence (s=16, V=64, d=32, h=2, ffw=96):
    embedding = 2 * 16 * 64 * 32  # 65536, and the same for the logits
    attention = 98304 + 16384 + 1536 + 16384 + 32768  # qkv, QK^T, softmax, @V, projection
    mlp = 2 * 16 * 3 * 32 * 96  # 294912
    forward = 65536 + 2 * (attention + mlp) + 65536
    assert embedding == 65536 and forward == 1051648
    assert flops['chinchilla'] == 3 * 1051648 // 16 == 197184
    assert type(flops['chinchilla']) is int and type(flops['six_n']) is int  # whole counts: JSON writes no '.0'
    # longer sequences cost more per token only through attention
    assert flops_per_token(config, seq_len=32)['six_n'] == flops['six_n']
    assert flops_per_token(config, seq_len=32)['chinchilla'] > flops['chinchilla']


def test_cpu_bf16_attention_path_matches_sdpa():
    """The plain-formula attention used for bf16 on a CPU computes what scaled_dot_product_attention does,
    with autograd (one block of queries) and without (blocks of 64 query rows skipping masked keys; T=150
    makes two full blocks and a partial one)."""
    import torch.nn.functional as F
    from model import causal_attention
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 150, 32) for _ in range(3))
    reference = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    q16, k16, v16 = (t.bfloat16().requires_grad_() for t in (q, k, v))
    with_grad = causal_attention(q16, k16, v16)
    with torch.no_grad():
        blocked = causal_attention(q16, k16, v16)
        single_block = causal_attention(q16, k16, v16, query_block=150)
    for bf16 in (with_grad, blocked):
        assert bf16.dtype == torch.bfloat16
        assert torch.allclose(bf16.float(), reference, atol=3e-2, rtol=0)  # bf16 has ~3 significant digits
        assert (bf16.float() - reference).abs().mean() < 5e-3
    torch.testing.assert_close(blocked, single_block, atol=1e-2, rtol=0)
    with_grad.float().sum().backward()
    assert q16.grad is not None and k16.grad.abs().sum() > 0 and v16.grad.abs().sum() > 0
    assert torch.equal(causal_attention(q, k, v), reference)  # float32 takes SDPA itself


def test_grouped_query_attention_equals_multi_head_attention_with_shared_keys_and_values():
    """n_kv_head=2 for 4 query heads: query heads 0,1 read key/value head 0 and heads 2,3 head 1 (Llama's
    grouping). The same model written as plain multi-head attention, each key/value head's weights repeated
    for its group, gives the same logits: in fp32 (SDPA with enable_gqa) and in bf16 on the CPU (the plain
    formula, which repeats k and v itself)."""
    torch.manual_seed(0)
    gqa_config = GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=4, n_kv_head=2, n_embd=32, ffw_size=64)
    gqa = GPT(gqa_config)
    mha = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=4, n_embd=32, ffw_size=64))
    state = gqa.state_dict()
    for i in range(2):
        q, k, v = state[f"blocks.{i}.attn.qkv.weight"].split([32, 16, 16])  # head dim 8: 2 heads of k, 2 of v
        repeat = lambda w: w.view(2, 8, 32).repeat_interleave(2, dim=0).reshape(32, 32)
        state[f"blocks.{i}.attn.qkv.weight"] = torch.cat([q, repeat(k), repeat(v)])
    mha.load_state_dict(state)
    assert gqa.blocks[0].attn.qkv.weight.shape == (64, 32)
    idx = torch.randint(0, 64, (3, 16))
    torch.testing.assert_close(gqa(idx)[0], mha(idx)[0], atol=1e-5, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(gqa(idx)[0].float(), mha(idx)[0].float(), atol=3e-2, rtol=0)
    with pytest.raises(ValueError, match="n_head 4 is not a multiple of n_kv_head 3"):
        GPTConfig(n_head=4, n_embd=32, n_kv_head=3)


def test_untied_output_head_is_its_own_decayed_matrix():
    config = GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=2, n_embd=32, ffw_size=64,
                       tie_embeddings=False)
    model = GPT(config)
    assert model.lm_head.weight is not model.tok_emb.weight
    assert model.num_params() == GPT(GPTConfig(**{**config.__dict__, "tie_embeddings": True})).num_params() + 64 * 32
    assert model.num_params(non_embedding=True) == model.num_params() - 2 * 64 * 32
    decay, no_decay = model.param_groups(weight_decay=0.1)
    assert any(p is model.lm_head.weight for p in decay["params"])
    assert any(p is model.tok_emb.weight for p in no_decay["params"])
    assert set(model.state_dict()) >= {"lm_head.weight", "tok_emb.weight"}


def test_flops_per_token_with_grouped_query_attention_by_hand():
    config = GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_kv_head=1, n_embd=32, ffw_size=96)
    flops = flops_per_token(config, seq_len=16)
    # per layer: q and output 2*32*32, k and v 2*32*16, SwiGLU 3*32*96, norms 2*32: 2048+1024+9216+64 = 12352
    assert flops['six_n'] == 6 * (2 * 12352 + 32) == 6 * GPT(config).num_params(non_embedding=True)
    attention = 2 * 16 * 32 * (32 + 32) + 16384 + 1536 + 16384 + 32768  # qkv 65536 (not 98304), then as MHA
    forward = 2 * 65536 + 2 * (attention + 2 * 16 * 3 * 32 * 96)
    assert flops['chinchilla'] == 3 * forward // 16


@pytest.mark.parametrize("name, billions", [("1b", 1.076), ("8b", 7.392)])
def test_billion_parameter_presets(name, billions):
    model = meta_model(GPTConfig(vocab_size=50304, **PRESETS[name]))
    assert model.num_params() / 1e9 == pytest.approx(billions, abs=1e-3)
    assert model.config.n_kv_head == 8 and model.config.rope_theta == 500000.0
    assert model.config.tie_embeddings == (name == "1b")


def test_activation_checkpointing_recomputes_the_same_gradients():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=3, n_head=2, n_embd=32, ffw_size=64))
    idx = torch.randint(0, 64, (4, 16))
    grads = []
    for checkpointing in (False, True):
        model.activation_checkpointing = checkpointing
        model.zero_grad()
        loss = model(idx, idx)[1]
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
            model(idx, idx)[1]  # what this forward keeps for backward
        loss.backward()
        grads.append(([p.grad.clone() for p in model.parameters()], loss.item(), sum(saved)))
    (plain, plain_loss, plain_saved), (recomputed, recomputed_loss, recomputed_saved) = grads
    assert plain_loss == recomputed_loss
    assert all(torch.allclose(a, b, atol=1e-6, rtol=0) for a, b in zip(plain, recomputed))
    assert recomputed_saved < plain_saved / 2  # the blocks keep only their inputs


def test_python_model_py_lists_every_preset_with_its_parameters():
    lines = describe_presets()
    assert [line.split(":")[0].strip() for line in lines] == list(PRESETS)
    tiny = GPT(GPTConfig(vocab_size=padded_vocab_size(257), block_size=256, **PRESETS["cpu_tiny"]))  # built for real
    assert f"{tiny.num_params() / 1e6:9.2f}M parameters" in lines[list(PRESETS).index("cpu_tiny")]
    assert "123.59M parameters" in lines[list(PRESETS).index("124m")] and lines[0].endswith("vocabulary 50304")

"""The paper's "llama"-style GPT: pre-norm RMSNorm, rotary embeddings, SwiGLU, tied embeddings.

Hägele et al. 2024 train this architecture at nine sizes (33M-360M, see PRESETS) with the GPT-2
vocabulary padded to 50304; the 'cpu_*' presets (130k to 10M parameters) are for the bytes tokenizer
(257 tokens padded to 320) so that experiments fit on a CPU.

Usage:
    python model.py          # every preset: its shape and parameters (GPT-2's vocabulary; cpu_* the bytes')

    import torch
    from model import GPT, GPTConfig, PRESETS, padded_vocab_size, flops_per_token
    config = GPTConfig(vocab_size=padded_vocab_size(257), block_size=256, **PRESETS['cpu_tiny'])
    model = GPT(config)
    idx = torch.randint(0, 257, (4, 256))
    logits, loss = model(idx[:, :-1], targets=idx[:, 1:])   # loss: mean cross-entropy in fp32
    sample = model.generate(idx[:1, :8], max_new_tokens=32, top_k=50)
    print(model.num_params(), flops_per_token(config, seq_len=256))

Checkpoints hold only weights: the rotary cos/sin tables are non-persistent buffers recomputed
from the config.
"""
import math
import sys
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.utils.checkpoint
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 50304  # already padded (see padded_vocab_size)
    block_size: int = 512  # longest sequence the model accepts (size of the rotary tables)
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    ffw_size: int = 2048  # SwiGLU hidden size
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    n_kv_head: int = None  # key/value heads (grouped-query attention); None: n_head, plain multi-head attention
    tie_embeddings: bool = True  # the output head is the input embedding

    def __post_init__(self):
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        if (self.n_embd // self.n_head) % 2 != 0:
            raise ValueError(f"head dim {self.n_embd // self.n_head} must be even for rotary embeddings")
        if self.n_kv_head < 1 or self.n_head % self.n_kv_head != 0:
            raise ValueError(f"n_head {self.n_head} is not a multiple of n_kv_head {self.n_kv_head}")

    @property
    def kv_dim(self):
        """Width of the keys (and of the values): n_kv_head heads of n_embd / n_head."""
        return self.n_kv_head * (self.n_embd // self.n_head)


# The paper's model table (all heads of dim 64). The names count all parameters with the GPT-2
# vocabulary padded to 50304, embedding (tied with the head) counted once; every preset is within
# 1.5 % of its name (tests/test_model.py checks this).
PRESETS = {
    '33m': dict(n_layer=8, n_head=6, n_embd=384, ffw_size=1024),
    '53m': dict(n_layer=8, n_head=8, n_embd=512, ffw_size=1536),
    '60m': dict(n_layer=10, n_head=8, n_embd=512, ffw_size=1536),
    '93m': dict(n_layer=12, n_head=10, n_embd=640, ffw_size=1792),
    '124m': dict(n_layer=12, n_head=12, n_embd=768, ffw_size=2048),
    '151m': dict(n_layer=16, n_head=12, n_embd=768, ffw_size=2048),
    '166m': dict(n_layer=12, n_head=14, n_embd=896, ffw_size=2560),
    '210m': dict(n_layer=24, n_head=12, n_embd=768, ffw_size=2048),
    '360m': dict(n_layer=24, n_head=16, n_embd=1024, ffw_size=2816),
    # CPU-sized models for the bytes vocabulary (320 after padding). Head dim 32 / 64; the
    # SwiGLU hidden size is ~2.5-3x the width like the paper's, rounded to a multiple of 32.
    # cpu_130k ... cpu_tiny double in size: the model sizes of sweep.py's cpu scaling suite (C8).
    'cpu_130k': dict(n_layer=2, n_head=2, n_embd=64, ffw_size=192),  # 0.13M parameters
    'cpu_250k': dict(n_layer=2, n_head=3, n_embd=96, ffw_size=256),  # 0.25M parameters
    'cpu_500k': dict(n_layer=4, n_head=3, n_embd=96, ffw_size=288),  # 0.51M parameters
    'cpu_tiny': dict(n_layer=5, n_head=4, n_embd=128, ffw_size=320),  # 0.98M parameters
    'cpu_10m': dict(n_layer=8, n_head=5, n_embd=320, ffw_size=896),  # 10.3M parameters
    # The paper's billion-parameter section (100B FineWeb tokens for 1B, 8B on downstream tasks) does not tabulate
    # its shapes: '1b' is Llama-3.2-1B's shape (tied head) and '8b' Llama-3-8B's (untied head), both with grouped-
    # query attention (8 key/value heads) and rope theta 500000. With GPT-2's vocabulary: 1.08B and 7.39B parameters.
    '1b': dict(n_layer=16, n_head=32, n_kv_head=8, n_embd=2048, ffw_size=8192, rope_theta=500000.0),
    '8b': dict(n_layer=32, n_head=32, n_kv_head=8, n_embd=4096, ffw_size=14336, rope_theta=500000.0,
               tie_embeddings=False),
}


def padded_vocab_size(n, multiple=64):
    """Round the tokenizer's vocabulary up to a multiple of `multiple` (faster matmuls)."""
    return ((n + multiple - 1) // multiple) * multiple


def rotary_tables(config):
    """cos/sin of shape (block_size, head_dim/2): position m rotates pair i by m * theta^(-2i/head_dim)."""
    head_dim = config.n_embd // config.n_head
    inv_freq = config.rope_theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(config.block_size, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rotary(x, cos, sin):
    """Rotate (B, n_head, T, head_dim) by position. The two halves of the head dim form the pairs.

    The rotation runs in x's dtype: the fp32 tables are cast (a few kB) rather than q and k, so under
    bf16 autocast no activation makes an fp32 round trip, and q, k, v reach attention in one dtype.
    """
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


def causal_attention(q, k, v, query_block=64):
    """softmax(q k^T / sqrt(head_dim) + causal mask) v for q (B, n_head, T, head_dim) and k, v (B, n_kv_head, T,
    head_dim): with grouped-query attention (n_kv_head < n_head) query head h reads key/value head
    h // (n_head / n_kv_head), as in Llama.

    Everywhere but bf16 on a CPU this is SDPA's fused kernel (flash attention on GPUs). PyTorch's CPU
    flash kernel computes in fp32 whatever the input dtype, so in bf16 the plain formula is faster
    (2.3-2.7x for fwd+bwd at the CPU presets' shapes on an AVX-512 BF16 CPU): baddbmm adds the mask
    while computing the scores, and the matmuls run on the CPU's bf16 units.
    Without autograd (evaluation, sampling) the queries go in blocks of `query_block` rows that see
    only the keys up to their own end, as flash attention does: the masked upper triangle is never
    computed (~40 % of the scores at T=256) and a block's scores stay in cache. Under autograd the
    backward of the many small ops costs more than this saves, so training takes one block.
    """
    groups = q.shape[1] // k.shape[1]
    if q.device.type != "cpu" or q.dtype != torch.bfloat16:
        # enable_gqa reads each key/value head for its group of query heads without copying them
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, **({"enable_gqa": True} if groups > 1 else {}))
    if groups > 1:
        k, v = (t.repeat_interleave(groups, dim=1) for t in (k, v))
    B, H, T, D = q.shape
    q, k, v = (t.reshape(B * H, T, D) for t in (q, k, v))
    mask = torch.full((T, T), float("-inf"), dtype=q.dtype, device=q.device).triu(1)
    block = T if torch.is_grad_enabled() else query_block
    outputs = []
    for start in range(0, T, block):
        end = min(start + block, T)
        scores = torch.baddbmm(mask[start:end, :end], q[:, start:end], k[:, :end].transpose(1, 2), alpha=D ** -0.5)
        outputs.append(scores.softmax(dim=-1) @ v[:, :end])
    return (outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)).view(B, H, T, D)


def rotate_pair(q, k, cos, sin):
    """q and k rotated by position (apply_rotary); lab/kernels.py may put a fused kernel in its place."""
    return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)


def silu_gate(gate, up):
    """SwiGLU's gating: silu(gate) * up; lab/kernels.py may put a fused kernel in its place."""
    return F.silu(gate) * up


class CausalSelfAttention(nn.Module):
    rotate = staticmethod(rotate_pair)

    def __init__(self, config):
        super().__init__()
        self.n_head, self.n_kv_head, self.kv_dim = config.n_head, config.n_kv_head, config.kv_dim
        self.qkv = nn.Linear(config.n_embd, config.n_embd + 2 * config.kv_dim, bias=False)  # q, then k, then v
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=False)  # residual output

    def forward(self, x, cos, sin):
        B, T, C = x.shape
        qkv = self.qkv(x)
        if self.n_kv_head == self.n_head:
            # (B, T, 3C) -> three contiguous (B, n_head, T, head_dim) in one copy: on a CPU the rotary's
            # element-wise ops run ~3x faster on contiguous q and k than on strided views of qkv.
            q, k, v = qkv.view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4).contiguous().unbind(0)
        else:  # grouped-query attention: k and v have fewer heads than q, one contiguous copy each
            q, k, v = (t.view(B, T, -1, C // self.n_head).transpose(1, 2).contiguous()
                       for t in qkv.split([C, self.kv_dim, self.kv_dim], dim=-1))
        q, k = self.rotate(q, k, cos, sin)
        y = causal_attention(q, k, v)
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))


class SwiGLU(nn.Module):
    gate = staticmethod(silu_gate)

    def __init__(self, config):
        super().__init__()
        self.w1 = nn.Linear(config.n_embd, config.ffw_size, bias=False)  # gate
        self.w3 = nn.Linear(config.n_embd, config.ffw_size, bias=False)  # up
        self.w2 = nn.Linear(config.ffw_size, config.n_embd, bias=False)  # down, residual output

    def forward(self, x):
        return self.w2(self.gate(self.w1(x), self.w3(x)))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attn_norm = nn.RMSNorm(config.n_embd, eps=config.norm_eps)
        self.attn = CausalSelfAttention(config)
        self.mlp_norm = nn.RMSNorm(config.n_embd, eps=config.norm_eps)
        self.mlp = SwiGLU(config)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    # Parameters written into the residual stream; their init shrinks with depth (GPT-2 style)
    # so the residual stream's variance does not grow with the number of layers.
    RESIDUAL_PROJECTIONS = ('attn.proj.weight', 'mlp.w2.weight')
    activation_checkpointing = False  # train.py's activation_checkpointing (parallel.wrap sets it)
    fused_loss = None  # lab/kernels.py: (hidden, head weight, targets) -> the loss, the logits never whole

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.final_norm = nn.RMSNorm(config.n_embd, eps=config.norm_eps)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight  # tied: one tensor, counted once
        cos, sin = rotary_tables(config)
        self.register_buffer('rope_cos', cos, persistent=False)
        self.register_buffer('rope_sin', sin, persistent=False)
        self._init_weights()

    def _init_weights(self):
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith(self.RESIDUAL_PROJECTIONS):
                nn.init.normal_(p, mean=0.0, std=residual_std)
            elif p.dim() == 2:  # linear and embedding weights
                nn.init.normal_(p, mean=0.0, std=0.02)
            # norm gains keep their init of ones

    def num_params(self, non_embedding=False):
        """All parameters, the tied embedding/head counted once; optionally without the embedding (and without
        an untied output head, which is a second embedding matrix)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.tok_emb.weight.numel() * (1 if self.config.tie_embeddings else 2)
        return n

    def param_groups(self, weight_decay):
        """Optimizer groups: decay the 2-D matrices except the embedding (an untied output head is decayed like
        any other matrix); not the embedding or norms."""
        decay, no_decay = [], []
        for p in self.parameters():  # parameters() yields the tied tensor once
            (decay if p.dim() >= 2 and p is not self.tok_emb.weight else no_decay).append(p)
        return [{'params': decay, 'weight_decay': weight_decay},
                {'params': no_decay, 'weight_decay': 0.0}]

    def forward(self, idx, targets=None):
        """idx (B, T) token ids -> (logits (B, T, vocab), loss or None); with a fused loss and targets, (None, loss)."""
        T = idx.shape[1]
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds the model's block_size {self.config.block_size}")
        cos, sin = self.rope_cos[:T], self.rope_sin[:T]
        x = self.tok_emb(idx)
        for block in self.blocks:
            if self.activation_checkpointing and torch.is_grad_enabled():
                # keep only the block's input and recompute the rest in backward: memory traded for compute
                x = torch.utils.checkpoint.checkpoint(block, x, cos, sin, use_reentrant=False)
            else:
                x = block(x, cos, sin)
        x = self.final_norm(x)
        if targets is not None and self.fused_loss is not None:
            return None, self.fused_loss(x.flatten(0, 1), self.lm_head.weight, targets.reshape(-1))
        logits = self.lm_head(x)
        loss = None
        if targets is not None:
            # fp32 logits: under bf16 autocast the softmax over 50k classes would lose precision.
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        """Append max_new_tokens sampled tokens to idx (B, T); the context is cropped to block_size.

        temperature 0 picks the most likely token; top_k keeps only the k most likely tokens.
        """
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size:]
            logits = self(context)[0][:, -1, :].float()
            if temperature == 0:
                next_token = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth_largest = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
                    logits = logits.masked_fill(logits < kth_largest, float('-inf'))
                next_token = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)
            idx = torch.cat((idx, next_token), dim=1)
        return idx


def flops_per_token(config, seq_len):
    """Training (forward + backward = 3 x forward) FLOPs per token, two conventions.

    six_n: Kaplan et al.'s 6 * N with N = the non-embedding parameters (transformer blocks,
      norm gains included, plus the final norm). It leaves out the embedding lookup, the output
      head matmul (2 * n_embd * vocab per token forward, tied weights or not) and attention's
      sequence-length-dependent terms.
    chinchilla: Hoffmann et al. appendix F, per sequence of length s, forward:
      embedding 2 s V d; per layer: qkv 2 s d (d + 2 kv) (kv = n_kv_head * head_dim, = d without
      grouped-query attention: their 2*3 s d d), QK^T 2 s^2 d, softmax 3 h s^2 (h = heads),
      softmax @ V 2 s^2 d, output projection 2 s d d; SwiGLU 2 s 3 d ffw; logits 2 s d V.
      Counted dense: no discount for the causal mask. Divided by s for per token.
    """
    V, d, L, h, f, s, kv = (config.vocab_size, config.n_embd, config.n_layer, config.n_head,
                            config.ffw_size, seq_len, config.kv_dim)
    non_embedding_params = L * (2 * d * d + 2 * d * kv + 3 * d * f + 2 * d) + d
    attention = 2 * s * d * (d + 2 * kv) + 2 * s * s * d + 3 * h * s * s + 2 * s * s * d + 2 * s * d * d
    mlp = 2 * s * 3 * d * f
    forward = 2 * s * V * d + L * (attention + mlp) + 2 * s * d * V
    return dict(six_n=6 * non_embedding_params, chinchilla=3 * forward // s)  # every term has a factor s


def describe_presets():
    """Lines of text: each preset's shape and parameter count, built on the meta device (no memory)."""
    lines = []
    for name, shape in PRESETS.items():
        vocab = padded_vocab_size(257 if name.startswith("cpu_") else 50257)
        with torch.device("meta"):
            model = GPT(GPTConfig(vocab_size=vocab, block_size=256, **shape))
        lines.append(f"{name:>9}: {shape['n_layer']:>2} layers, {shape['n_head']:>2} heads, "
                     f"width {shape['n_embd']:>4}, SwiGLU {shape['ffw_size']:>5}, "
                     f"{model.num_params() / 1e6:9.2f}M parameters "
                     f"({model.num_params(non_embedding=True) / 1e6:.2f}M without the embedding), vocabulary {vocab}")
    return lines


if __name__ == "__main__":
    if sys.argv[1:] not in ([], ["--help"], ["-h"]):
        sys.exit(f"error: model.py takes no settings, got {' '.join(sys.argv[1:])} (--help says what it prints)")
    print(__doc__.strip() if sys.argv[1:] else "\n".join(describe_presets()))

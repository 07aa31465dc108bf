# A ~1M-parameter model on the embedded stdlib corpus with the bytes tokenizer: 200 steps of the cpu scale's batch
# (16 x 256 tokens, 0.8M tokens), under 2 minutes on 2 cores of a CPU without bf16 units (fp32), about 1 with them.
# Constant LR after a short warmup, then a 20 % 1-sqrt cooldown: the paper's recipe in miniature.
#   python prepare_data.py --dataset=stdlib --tokenizer=bytes && python train.py configs/cpu_tiny.py
out_dir = "out/cpu_tiny"
data_dir = "data/stdlib-bytes"
model = "cpu_tiny"
dtype = "auto"  # bf16 where the device computes it fast (lab/precision.py), else fp32 (fp16 on GPUs without bf16)
batch_size = 16
seq_len = 256
max_steps = 200
lr = 3e-3
schedule = "wsd"
warmup_steps = 20
cooldown_frac = 0.2
cooldown_shape = "1-sqrt"
eval_interval = 40           # the cooldown starts at step 160, so the evaluation there is "before cooldown"
eval_tokens = 32768
log_interval = 20
ckpt_interval = 100

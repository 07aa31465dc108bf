# A ~1M-parameter model on the embedded stdlib corpus with the bytes tokenizer: 1.2M tokens, the cpu scale's batch
# (16 x 256), in about 2 minutes on 2 cores of a CPU without bf16 units (fp32), well under one with them (bf16).
# Constant LR after a short warmup, then a 20 % 1-sqrt cooldown: the paper's recipe in miniature.
#   python prepare_data.py --dataset=stdlib --tokenizer=bytes && python train.py configs/cpu_tiny.py
out_dir = "out/cpu_tiny"
data_dir = "data/stdlib-bytes"
model = "cpu_tiny"
dtype = "auto"  # bf16 where the device computes it fast (precision.py), else fp32 (fp16 on GPUs without bf16)
batch_size = 16
seq_len = 256
max_steps = 300
lr = 3e-3
schedule = "wsd"
warmup_steps = 30
cooldown_frac = 0.2
cooldown_shape = "1-sqrt"
eval_interval = 60           # the cooldown starts at step 240, so the evaluation there is "before cooldown"
eval_tokens = 32768
log_interval = 20
ckpt_interval = 100

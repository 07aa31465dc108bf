# A 1B model (model.PRESETS['1b']: Llama-3.2-1B's shape) on 100B FineWeb tokens, constant LR + 20 % 1-sqrt
# cooldown. torchrun --standalone --nproc_per_node=8 train.py configs/1b_cooldown.py
from configs.billion import *  # seq 2048, batch 512 (~1M tokens), 95,367 steps, FSDP2, bf16

model = "1b"
out_dir = "out/1b_cooldown"
lr = 5e-4                              # assumed: half the cosine peak (the paper's C3)
schedule = "wsd"
cooldown_frac = 0.2
cooldown_shape = "1-sqrt"
micro_batch_size = 8                   # at most 8 sequences per forward (--dry_run=True: fits 80 GB, 16 does not)

# The cosine baseline of configs/8b_cooldown.py.
from configs.billion import *

model = "8b"
out_dir = "out/8b_cosine"
lr = 3e-4                              # assumed: Llama-3 8B's cosine peak
schedule = "cosine"
activation_checkpointing = True
micro_batch_size = 8

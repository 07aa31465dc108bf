# The cosine baseline of configs/1b_cooldown.py: the same model, data and steps, cosine to 10 % of the peak.
from configs.billion import *

model = "1b"
out_dir = "out/1b_cosine"
lr = 1e-3                              # assumed: the 124M-360M models' cosine peak
schedule = "cosine"
micro_batch_size = 8

# The paper's 166M model: constant LR 0.0005 (half the best cosine peak) with a 20 % 1-sqrt cooldown.
from configs.paper import *  # seq 512, batch 200, warmup 300, AdamW (0.9, 0.95), wd 0.1, clip 1.0

model = "166m"
# The paper gives no token budgets for 166M; this config runs 2.6B tokens.
max_steps = 25391
out_dir = "out/166m"
lr = 0.0005
schedule = "wsd"
cooldown_frac = 0.2
cooldown_shape = "1-sqrt"

# The paper's 33M model: constant LR 0.001 (half the best cosine peak) with a 20 % 1-sqrt cooldown.
from configs.paper import *  # seq 512, batch 200, warmup 300, AdamW (0.9, 0.95), wd 0.1, clip 1.0

model = "33m"
# Token budgets in the paper: 0.3B, 0.7B, 1.0B (= 2930, 6836, 9766 steps); this config runs the middle one.
max_steps = 6836
out_dir = "out/33m"
lr = 0.001
schedule = "wsd"
cooldown_frac = 0.2
cooldown_shape = "1-sqrt"

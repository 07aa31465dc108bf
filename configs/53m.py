# The paper's 53M model: constant LR 0.001 (half the best cosine peak) with a 20 % 1-sqrt cooldown.
from configs.paper import *  # seq 512, batch 200, warmup 300, AdamW (0.9, 0.95), wd 0.1, clip 1.0

model = "53m"
# Token budgets in the paper: 0.4B, 0.8B, 1.2B (= 3906, 7812, 11719 steps); this config runs the middle one.
max_steps = 7812
out_dir = "out/53m"
lr = 0.001
schedule = "wsd"
cooldown_frac = 0.2
cooldown_shape = "1-sqrt"

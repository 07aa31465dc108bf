# The paper's 360M model: constant LR 0.0005 (half the best cosine peak) with a 20 % 1-sqrt cooldown.
from configs.paper import *  # seq 512, batch 200, warmup 300, AdamW (0.9, 0.95), wd 0.1, clip 1.0

model = "360m"
# Token budgets in the paper: 5.1B, 7.7B, 10.2B (= 49805, 75195, 99609 steps); this config runs the middle one.
max_steps = 75195
out_dir = "out/360m"
lr = 0.0005
schedule = "wsd"
cooldown_frac = 0.2
cooldown_shape = "1-sqrt"

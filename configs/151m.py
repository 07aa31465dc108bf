# The paper's 151M model: constant LR 0.0005 (half the best cosine peak) with a 20 % 1-sqrt cooldown.
from configs.paper import *  # seq 512, batch 200, warmup 300, AdamW (0.9, 0.95), wd 0.1, clip 1.0

model = "151m"
# Token budgets in the paper: 2.6B, 3.8B, 5.1B (= 25391, 37109, 49805 steps); this config runs the middle one.
max_steps = 37109
out_dir = "out/151m"
lr = 0.0005
schedule = "wsd"
cooldown_frac = 0.2
cooldown_shape = "1-sqrt"

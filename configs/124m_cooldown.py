# The paper's 124M model, constant LR + cooldown: LR 0.0005, 20 % linear cooldown to 0 (Fig. 3).
# Try --cooldown_shape=1-sqrt (Fig. 4) or --cooldown_frac=0.1.
from configs.paper import *  # seq 512, batch 200, warmup 300, AdamW (0.9, 0.95), wd 0.1, clip 1.0

model = "124m"
# Token budgets in the paper: 1.5B, 2.6B, 3.6B (= 14648, 25391, 35156 steps); this config runs the middle one.
max_steps = 25391
out_dir = "out/124m_cooldown"
lr = 0.0005
schedule = "wsd"
cooldown_frac = 0.2
cooldown_shape = "linear"

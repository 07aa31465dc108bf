# The paper's 210M model, constant LR + cooldown: LR 0.0005, 20 % linear cooldown to 0 (Fig. 3).
# Try --cooldown_shape=1-sqrt (Fig. 4) or --cooldown_frac=0.1.
from configs.paper import *  # seq 512, batch 200, warmup 300, AdamW (0.9, 0.95), wd 0.1, clip 1.0

model = "210m"
# Token budgets in the paper: 3.8B, 5.1B, 6.4B (= 37109, 49805, 62500 steps); this config runs the middle one.
max_steps = 49805
out_dir = "out/210m_cooldown"
lr = 0.0005
schedule = "wsd"
cooldown_frac = 0.2
cooldown_shape = "linear"

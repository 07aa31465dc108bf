# The paper's 210M model, cosine baseline: peak LR 0.001, decays to 10 % of the peak at max_steps.
from configs.paper import *  # seq 512, batch 200, warmup 300, AdamW (0.9, 0.95), wd 0.1, clip 1.0

model = "210m"
# Token budgets in the paper: 3.8B, 5.1B, 6.4B (= 37109, 49805, 62500 steps); this config runs the middle one.
max_steps = 49805
out_dir = "out/210m_cosine"
lr = 0.001
schedule = "cosine"
final_lr_frac = 0.1

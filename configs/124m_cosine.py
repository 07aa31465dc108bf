# The paper's 124M model, cosine baseline: peak LR 0.001, decays to 10 % of the peak at max_steps.
from configs.paper import *  # seq 512, batch 200, warmup 300, AdamW (0.9, 0.95), wd 0.1, clip 1.0

model = "124m"
# Token budgets in the paper: 1.5B, 2.6B, 3.6B (= 14648, 25391, 35156 steps); this config runs the middle one.
max_steps = 25391
out_dir = "out/124m_cosine"
lr = 0.001
schedule = "cosine"
final_lr_frac = 0.1

# SWA on the paper's 124M cosine run (Fig. 7): the average tracks the envelope of shorter cosine runs.
from configs.paper import *  # seq 512, batch 200, warmup 300, AdamW (0.9, 0.95), wd 0.1, clip 1.0

model = "124m"
out_dir = "out/124m_swa_cosine"
lr = 0.001
schedule = "cosine"
final_lr_frac = 0.1
max_steps = 25391
swa = True
swa_interval = 5
swa_window = 500

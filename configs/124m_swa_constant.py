# SWA on the paper's 124M constant-LR run (Fig. 7): uniform averages over windows of 500 steps, folded in
# every 5 steps; every evaluation also logs val_loss_swa, the average of the latest completed window.
from configs.paper import *  # seq 512, batch 200, warmup 300, AdamW (0.9, 0.95), wd 0.1, clip 1.0

model = "124m"
out_dir = "out/124m_swa_constant"
lr = 0.0005
schedule = "constant"
max_steps = 25391
swa = True
swa_interval = 5
swa_window = 500

# The paper's 210M constant-LR trunk, shared by the three token budgets: it keeps the checkpoints
# where 20 % cooldowns for the budgets (3.8B, 5.1B, 6.4B) leave it. Then:
#   python branch.py configs/210m_trunk.py --trunk=out/210m_trunk --lengths=[37109,49805,62500] --cooldown_fracs=[0.2]
# runs the three cooldowns (out/210m_trunk-to<N>-cd<C>): three training lengths for ~0.57 of the compute of three cosine runs (C8).
from configs.paper import *  # seq 512, batch 200, warmup 300, AdamW (0.9, 0.95), wd 0.1, clip 1.0

model = "210m"
out_dir = "out/210m_trunk"
lr = 0.0005
schedule = "constant"
max_steps = 50000  # the last branch point: the longest branch cools down from there
keep_ckpt_steps = [29687, 39844, 50000]

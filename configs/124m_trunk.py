# The paper's 124M constant-LR trunk, shared by the three token budgets: it keeps the checkpoints
# where 20 % cooldowns for the budgets (1.5B, 2.6B, 3.6B) leave it. Then:
#   python branch.py configs/124m_trunk.py --trunk=out/124m_trunk --lengths=[14648,25391,35156] --cooldown_fracs=[0.2]
# runs the three cooldowns (out/124m_trunk-to<N>-cd<C>): three training lengths for ~0.57 of the compute of three cosine runs (C8).
from configs.paper import *  # seq 512, batch 200, warmup 300, AdamW (0.9, 0.95), wd 0.1, clip 1.0

model = "124m"
out_dir = "out/124m_trunk"
lr = 0.0005
schedule = "constant"
max_steps = 28125  # the last branch point: the longest branch cools down from there
keep_ckpt_steps = [11718, 20313, 28125]

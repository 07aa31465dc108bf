# Schedule-free AdamW on the paper's 210M model (Fig. 8) with betas (0.95, 0.99); the paper finds
# (0.95, 0.99) much better than (0.9, 0.95) at 210M. No LR schedule: the optimizer warms up over warmup_steps
# itself and evaluates its averaged weights. Peak LR: the cosine peak of this size (sweep it for a fair comparison).
from configs.paper import *  # seq 512, batch 200, warmup 300, AdamW (0.9, 0.95), wd 0.1, clip 1.0

model = "210m"
out_dir = "out/210m_schedulefree_95_99"
optimizer = "adamw_schedulefree"
schedule = "constant"
lr = 0.001
beta1, beta2 = 0.95, 0.99
max_steps = 49805

# An 8B model (model.PRESETS['8b']: Llama-3-8B's shape, grouped-query attention, untied head) with constant LR
# and a 20 % 1-sqrt cooldown. It needs FSDP: fp32 weights and AdamW state alone are ~118 GB.
#   WORLD_SIZE=8 python train.py configs/8b_cooldown.py --dry_run=True      # the plan, per GPU
#   torchrun --nnodes=4 --nproc_per_node=8 ... train.py configs/8b_cooldown.py
from configs.billion import *

model = "8b"
out_dir = "out/8b_cooldown"
lr = 1.5e-4                            # assumed: half of Llama-3 8B's cosine peak of 3e-4
schedule = "wsd"
cooldown_frac = 0.2
cooldown_shape = "1-sqrt"
activation_checkpointing = True        # recompute each block in backward: activations of 32 layers do not fit
micro_batch_size = 8

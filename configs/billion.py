# Shared settings of the billion-parameter runs (1b_*.py, 8b_*.py): the paper's section on 1B (100B FineWeb
# tokens) and 8B models, compared on downstream tasks. The paper does not list every setting of these runs; the
# ones marked "assumed" follow common practice for these sizes and the paper's rules (constant LR = half the
# cosine peak, 20 % cooldown). Plan first: WORLD_SIZE=8 python train.py configs/8b_cooldown.py --dry_run=True
#   from configs.billion import *      then set model, lr, schedule, micro_batch_size.
data_dir = "data/fineweb-sample-100BT-gpt2"  # python prepare_data.py --dataset=fineweb --sample=sample-100BT
seq_len = 2048                         # assumed
batch_size = 512                       # sequences per step in total: ~1M tokens (assumed)
max_steps = 95367                      # 100B tokens / 1,048,576 tokens per step
warmup_steps = 2000                    # assumed
beta1, beta2 = 0.9, 0.95
weight_decay = 0.1
grad_clip = 1.0
init_from = "auto"  # resume out_dir's latest checkpoint, else start: restarted or requeued, the command carries on
dtype = "auto"  # bf16 where the device computes it fast (lab/precision.py), else fp32 (fp16 on GPUs without bf16)
compile = True
parallelism = "fsdp"                   # FSDP2: weights, gradients and AdamW state sharded over the processes
eval_interval = 2000
eval_tokens = 64 * 2048 * 16           # 16 fixed validation batches (~2M tokens)
eval_batch_size = 16
log_interval = 50
ckpt_interval = 2000
keep_ckpt_steps = [76294]              # the start of the 20 % cooldown: branch points for shorter runs
dist_timeout_s = 1800                  # gathering an 8B checkpoint to rank 0 takes minutes

# The paper's training setup (Hägele et al. 2024, section 3 / appendix), shared by the size configs:
#   from configs.paper import *      then set model, lr, schedule and max_steps.
data_dir = "data/slimpajama-gpt2"      # python prepare_data.py --dataset=slimpajama --tokenizer=gpt2
seq_len = 512
batch_size = 200                       # sequences per step in total: ~0.1M tokens, whatever the GPU count
warmup_steps = 300
beta1, beta2 = 0.9, 0.95
weight_decay = 0.1
grad_clip = 1.0
init_from = "auto"  # resume out_dir's latest checkpoint, else start: restarted or requeued, the command carries on
dtype = "auto"  # bf16 where the device computes it fast (lab/precision.py), else fp32 (fp16 on GPUs without bf16)
compile = True
eval_interval = 1000
eval_tokens = 200 * 512 * 20           # 20 fixed validation batches (~2M tokens), the same at every evaluation
eval_batch_size = 50
log_interval = 50
ckpt_interval = 2000
micro_batch_size = 50                  # at most 50 sequences per forward, as the authors ran it: 4 micro-steps on one
                                       # GPU, one of 25 on each of 8; every size fits 80 GB (--dry_run=True shows it)

"""The scripts trainer=ray runs as Ray jobs on the team's cluster: `train.py` (LoRA SFT with TRL and PEFT) and
`serve.py` (an OpenAI-compatible server of the base model and its adapters).

They run in the cluster's Python, not the bot's: the bot uploads this folder as the job's working_dir, so each
script stands alone (no imports from the bot) and talks to the bot only through its files in DISTILL_RAY_STORAGE
and the `DISTILL_*` lines it prints (bot/trainers/ray_logs.py parses them).
"""

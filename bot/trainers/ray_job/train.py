"""LoRA supervised fine-tuning of a causal LM on a chat-format JSONL (the file the hosted trainers get), with TRL's
SFTTrainer and PEFT. Run by trainer=ray as a Ray job; stands alone (see __init__.py).

Each example {"messages": [...]} becomes a prompt (every message but the last) and a completion (the assistant's
answer), so the loss is on the answer only, with any model whose tokenizer has a chat template. The adapter goes
to OUT/adapter and a manifest (base model, adapter path, trained tokens, final loss) to OUT/manifest.json. Progress
goes to stdout as one `DISTILL_METRICS {json}` line per logging step and `DISTILL_MANIFEST {json}` at the end.

Usage: python train.py --base MODEL_OR_PATH --data train.jsonl --out DIR [--epochs N] [--learning-rate LR]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

DEFAULT_LEARNING_RATE = 2e-4  # the usual LoRA SFT rate; the run's lr multiplier scales it
LORA_TARGETS = "all-linear"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="Hugging Face id or a folder the cluster can read")
    parser.add_argument("--data", required=True, help="chat-format JSONL")
    parser.add_argument("--out", required=True, help="folder for the adapter and the manifest")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=DEFAULT_LEARNING_RATE)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def emit(kind: str, payload: dict) -> None:
    print(f"DISTILL_{kind} {json.dumps(payload, separators=(',', ':'))}", flush=True)


def prompt_completion(example: dict) -> dict:
    messages = example["messages"]
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def check_base(base: str) -> None:
    """Fail at once, before the slow imports, on a base model path this node does not have."""
    if base.startswith(("/", "./", "../", "~")) and not Path(base).expanduser().is_dir():
        raise SystemExit(f"Base model {base}: no such folder on this Ray node. Give a Hugging Face id or a path "
                         "every node can read (the student setting).")


def main() -> None:
    args = arguments()
    check_base(args.base)
    started = time.time()
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    class Metrics(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                emit("METRICS", {"step": state.global_step, "total_steps": state.max_steps,
                                 "epoch": round(float(state.epoch or 0), 4), "loss": round(float(logs["loss"]), 6)})

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(args.base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    cuda = torch.cuda.is_available()
    model = AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.bfloat16 if cuda else torch.float32)
    dataset = load_dataset("json", data_files=args.data, split="train").map(
        prompt_completion, remove_columns=["messages"])
    config = SFTConfig(
        output_dir=str(out / "checkpoints"), num_train_epochs=args.epochs, learning_rate=args.learning_rate,
        per_device_train_batch_size=args.batch_size, lr_scheduler_type="constant", warmup_steps=0,
        logging_steps=1, save_strategy="no", report_to="none", use_cpu=not cuda, bf16=cuda, fp16=False,
        gradient_checkpointing=False, max_length=args.max_length, packing=False, dataloader_num_workers=0,
        seed=args.seed, disable_tqdm=True,
    )
    lora = LoraConfig(r=args.lora_rank, lora_alpha=2 * args.lora_rank, lora_dropout=0.0, task_type="CAUSAL_LM",
                      target_modules=LORA_TARGETS)
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=lora, callbacks=[Metrics()])
    tokens_per_epoch = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
    emit("STARTED", {"examples": len(dataset), "tokens_per_epoch": tokens_per_epoch,
                     "total_steps": trainer.state.max_steps or None, "cuda": cuda})
    trained = time.time()
    trainer.train()
    adapter = out / "adapter"
    trainer.save_model(str(adapter))
    tokenizer.save_pretrained(str(adapter))
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    manifest = {
        "base_model": args.base, "adapter_path": str(adapter), "trained_tokens": tokens_per_epoch * args.epochs,
        "final_loss": losses[-1] if losses else None, "first_loss": losses[0] if losses else None,
        "steps": trainer.state.global_step, "epochs": args.epochs, "examples": len(dataset),
        "train_seconds": round(time.time() - trained, 3), "wall_seconds": round(time.time() - started, 3),
        "ray_job": os.environ.get("RAY_JOB_ID") or None,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    emit("MANIFEST", manifest)


if __name__ == "__main__":
    main()

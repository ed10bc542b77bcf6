"""Training-phase real tokens/s of a session with the plan's levers against the same session
with every lever off, side by side in one run (same data, same steps, same machine, trained at the same time so
both see the same load on a shared machine; ``--serial`` runs one after the other).

"Every lever off" is plain TRL's setup: no packing (padded batches), the model's default
attention, no Liger, no compile and gradient checkpointing on (TRL's default). Both runs go
through ``core.training.plan.launch_plan``; real tokens are the non-padding tokens the runner counts
(``include_num_input_tokens_seen="non_padding"``), measured between the first and the last
step event so model loading and data preparation are not counted.

    .venv/bin/python benchmarks/plan_levers.py [SESSION] [--steps 20] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def levers_off(spec):  # noqa: ANN001, ANN201 - a TrainSpec
    return spec.replace(
        packing=False,
        attn_implementation="",
        use_liger_kernel=False,
        torch_compile=False,
        gradient_checkpointing=True,
    )


def real_tokens_per_second(events: list[dict]) -> tuple[float, int, float]:
    steps = [e for e in events if e.get("type") == "step" and e.get("tokens_seen")]
    if len(steps) < 2:
        return 0.0, 0, 0.0
    first, last = steps[0], steps[-1]
    tokens = int(last["tokens_seen"]) - int(first["tokens_seen"])
    seconds = float(last["time"]) - float(first["time"])
    return (tokens / seconds if seconds > 0 else 0.0), tokens, seconds


def start(label: str, plan, session, root: Path):  # noqa: ANN001, ANN201
    from tuitune.core.runs.rundir import RunDir
    from tuitune.core.training.plan import launch_plan

    run = RunDir(root / label)
    launch_plan(plan, session, run, force=True)
    return run


def result(label: str, run) -> dict:  # noqa: ANN001
    from tuitune.core.runs.events import read_events
    from tuitune.core.runs.follow import wait_run

    final = wait_run(run)
    if final.get("type") != "finished":
        raise SystemExit(f"{label}: training {final.get('type')}: {final.get('message')}")
    rate, tokens, seconds = real_tokens_per_second(read_events(run.events))
    steps = sum(1 for e in read_events(run.events) if e.get("type") == "step")
    return {
        "label": label,
        "tokens_per_second": rate,
        "tokens": tokens,
        "seconds": seconds,
        "step_events": steps,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("session", nargs="?", default=str(ROOT / "assets/sessions/quickstart.json"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", help="keep the two runs here (default: a temporary folder)")
    ap.add_argument(
        "--serial", action="store_true", help="one run after the other (a quiet machine)"
    )
    args = ap.parse_args()

    from tuitune.core.models.resolve import resolve_model
    from tuitune.core.session import load_session
    from tuitune.core.training.plan import make_plan

    session = load_session(args.session)
    # The model on disk first (the default's first conversion), so the plan measures the data
    # with its tokenizer, as replay does; planned without lengths it packs a different batch.
    resolve_model(session.model.ref)
    plan = make_plan(session, overrides={"max_steps": args.steps, "eval_steps": 10_000})
    off = dataclasses.replace(plan, spec=levers_off(plan.spec))
    print("plan levers:", ", ".join(f"{lv.name}={lv.setting}" for lv in plan.levers))
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        root = Path(args.out or tmp)
        # both at once: on a shared machine they see the same load (run --serial otherwise)
        if args.serial:
            runs = {"plan": start("plan", plan, session, root)}
            results = [result("plan", runs["plan"])]
            runs["levers-off"] = start("levers-off", off, session, root)
            results.append(result("levers-off", runs["levers-off"]))
        else:
            runs = {"plan": start("plan", plan, session, root)}
            runs["levers-off"] = start("levers-off", off, session, root)
            results = [result(label, run) for label, run in runs.items()]
    for r in results:
        print(
            f"{r['label']:<11} {r['tokens_per_second']:8.1f} real tokens/s "
            f"({r['tokens']} tokens in {r['seconds']:.1f} s of training)"
        )
    base = results[1]["tokens_per_second"]
    ratio = results[0]["tokens_per_second"] / base if base else float("nan")
    print(f"ratio plan / levers off: {ratio:.2f}x")
    print(json.dumps({"results": results, "ratio": ratio}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

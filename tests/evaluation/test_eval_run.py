"""The evaluation child on the tiny model: one load, base = adapter disabled, honest output."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tuitune.core.evaluation.scoring import EvalResults, EvalSpec, run_evaluation
from tuitune.core.runs.events import read_events
from tuitune.core.runs.rundir import RunDir
from tuitune.core.session import EvalChoice
from tuitune.runner.evaluate import evaluate

ASSETS = Path(__file__).resolve().parents[2] / "assets"
EVAL = str(ASSETS / "quickstart" / "eval.jsonl")
GENERAL_ROWS = [
    {
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "reference": "Paris",
    },
    {"messages": [{"role": "user", "content": "What do bees make?"}], "reference": "honey"},
    {"messages": [{"role": "user", "content": "What is frozen water called?"}], "reference": "ice"},
    {"text": "Bread is made from flour, water, salt and yeast."},
    {"text": "Trains carry many passengers at once."},
]
PREF = str(ASSETS / "quickstart" / "preference.jsonl")


def _adapter(model_dir: Path, out: Path, *, trained: bool) -> Path:
    """A LoRA adapter made directly with PEFT; 'trained' perturbs lora_B (PEFT inits it 0)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    peft_model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    )
    if trained:
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    peft_model.save_pretrained(out)
    return out


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch):
    """The tiny model is all per-op overhead: OpenMP's thread team only adds barrier waits
    (badly so on a shared 2-core machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def adapters(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    return {
        "trained": _adapter(tiny_model, root / "trained", trained=True),
        "untrained": _adapter(tiny_model, root / "untrained", trained=False),
    }


def _spec(run: Path, model: Path, adapter: Path | None, **kw) -> EvalSpec:
    general = run.parent / f"{run.name}-general.jsonl"
    general.parent.mkdir(parents=True, exist_ok=True)
    general.write_text("".join(json.dumps(r) + "\n" for r in GENERAL_ROWS))
    base = dict(
        run_dir=str(run),
        base_model=str(model),
        adapter=str(adapter) if adapter else "",
        task="json_extract",
        eval_file=EVAL,
        general_file=str(general),
        max_new_tokens=10,
        limit=6,
        batch_size=4,
        seed=3,
        use_cpu=True,
    )
    base.update(kw)
    return EvalSpec(**base)


def test_base_vs_tuned_from_one_model(tiny_model: Path, adapters, tmp_path: Path) -> None:
    results = evaluate(_spec(tmp_path, tiny_model, adapters["trained"]))
    saved = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert saved["comparisons"] == results["comparisons"]
    res = EvalResults.from_dict(saved)
    check = res.adapter_check
    assert check["applied"] is True and check["max_logit_diff"] > 1e-3
    assert check["lora_b_nonzero"] == check["lora_modules"] > 0
    by = {c.metric: c for c in res.comparisons}
    for metric in ("exact_match", "json_valid", "schema_ok", "field_accuracy", "eval_loss"):
        assert by[metric].n == 6 and by[metric].before is not None and by[metric].after is not None
    # the random adapter moves the loss: the two sides are different models
    assert by["eval_loss"].before != by["eval_loss"].after
    assert by["general_perplexity"].n == 2 and by["general_answers"].n == 3
    gens = res.generations
    assert len(gens) == 6 and all(
        {"prompt", "reference", "before", "after"} <= set(g) for g in gens
    )
    assert gens[0]["prompt"].startswith("Beatriz")
    # progress events, phase eval, ending with done == total
    progress = [e for e in read_events(tmp_path / "events.jsonl") if e["type"] == "progress"]
    assert progress and all(e["phase"] == "eval" for e in progress)
    assert progress[-1]["done"] == progress[-1]["total"] > 0
    assert res.data["decoding"]["do_sample"] is False
    assert res.data["environment"]["device"] == "cpu"


def test_base_side_equals_the_plain_base_model(tiny_model: Path, adapters, tmp_path: Path) -> None:
    """Disabling the adapter gives exactly the base model's figures (same decoding)."""
    with_adapter = evaluate(_spec(tmp_path / "a", tiny_model, adapters["trained"], general_file=""))
    base_only = evaluate(_spec(tmp_path / "b", tiny_model, None, general_file=""))
    a = {c["metric"]: c for c in with_adapter["comparisons"]}
    b = {c["metric"]: c for c in base_only["comparisons"]}
    assert a["eval_loss"]["before"] == pytest.approx(b["eval_loss"]["before"], rel=1e-6)
    assert b["eval_loss"]["after"] is None and "adapter_check" not in base_only
    assert [g["before"] for g in with_adapter["generations"]] == [
        g["before"] for g in base_only["generations"]
    ]


def test_identical_to_base_is_detected(tiny_model: Path, adapters, tmp_path: Path) -> None:
    """An adapter that was never trained (lora_B all zero) leaves the model unchanged."""
    results = evaluate(_spec(tmp_path, tiny_model, adapters["untrained"], general_file=""))
    check = results["adapter_check"]
    assert check["applied"] is False and check["max_logit_diff"] == 0.0
    assert check["lora_b_nonzero"] == 0
    assert "identical to the base" in results["warnings"][0]
    assert "never trained" in results["warnings"][0]


def test_dpo_pairs_give_reward_accuracy_and_margin(
    tiny_model: Path, adapters, tmp_path: Path
) -> None:
    results = evaluate(
        _spec(
            tmp_path,
            tiny_model,
            adapters["trained"],
            task="",
            eval_file="",
            general_file="",
            preference_file=PREF,
            limit=8,
            beta=0.1,
        )
    )
    pref = results["preference"]
    assert pref["n"] == 8 and len(pref["margins"]) == 8
    by = {c["metric"]: c for c in results["comparisons"]}
    assert (
        by["reward_accuracy"]["n"] == 8
        and by["reward_accuracy"]["after"] == pref["reward_accuracy"]
    )
    assert by["reward_margin"]["after"] == pytest.approx(pref["reward_margin"])


def test_full_model_directory_is_a_second_load(tiny_model: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    tuned = tmp_path / "full"
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight.add_(0.5)
    model.save_pretrained(tuned)
    shutil.copy(tiny_model / "tokenizer.json", tuned / "tokenizer.json")
    results = evaluate(_spec(tmp_path / "run", tiny_model, tuned, general_file="", method="full"))
    assert results["adapter_check"]["applied"] is True
    assert "lora_modules" not in results["adapter_check"]
    # base scored, freed, then the tuned model loaded: never two models alive at once
    loading = results["loading"]
    assert loading["sequential"] is True
    assert loading["model_loads"] == 2 and loading["peak_live_models"] == 1
    assert loading["dtype"] == "fp32"  # on the CPU the policy is fp32
    by = {c["metric"]: c for c in results["comparisons"]}
    assert by["eval_loss"]["before"] != by["eval_loss"]["after"]


def test_lora_evaluation_keeps_one_model(tiny_model: Path, adapters, tmp_path: Path) -> None:
    results = evaluate(_spec(tmp_path, tiny_model, adapters["trained"], general_file=""))
    assert results["loading"]["model_loads"] == 1 and results["loading"]["peak_live_models"] == 1
    assert results["loading"]["load_in_4bit"] is False


def test_qlora_run_is_evaluated_on_its_4bit_base(
    tiny_model: Path, adapters, tmp_path: Path
) -> None:
    """A QLoRA run's base loads in nf4 with the training's quantization config, not bf16."""
    from tuitune.core.runs.events import EventWriter
    from tuitune.runner.evaluate import Evaluator

    spec = _spec(tmp_path / "run", tiny_model, adapters["trained"], method="qlora")
    with EventWriter(tmp_path / "events.jsonl") as events:
        ev = Evaluator(spec, events)
    kw = ev.load_kwargs()
    assert kw["quantization_config"].bnb_4bit_quant_type == "nf4"
    assert kw["quantization_config"].bnb_4bit_use_double_quant is True
    q_proj = ev.model.base_model.model.model.layers[0].self_attn.q_proj
    assert type(q_proj.base_layer).__name__ == "Linear4bit"
    results = evaluate(replace(spec, general_file="", limit=2))
    assert results["loading"]["load_in_4bit"] is True
    assert results["adapter_check"]["applied"] is True


def test_evalspec_carries_the_run_precision(tmp_path: Path) -> None:
    from tuitune.core.evaluation.scoring import build_evalspec
    from tuitune.core.spec import TrainSpec

    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    run.spec.write_text(
        TrainSpec(method="qlora", bf16=True, load_in_4bit=True, max_length=300).to_json()
    )
    choice = EvalChoice(task="json_extract", eval_file=EVAL)
    espec = build_evalspec(run, tmp_path, None, choice, seed=1)
    assert (espec.method, espec.bf16, espec.fp16, espec.load_in_4bit) == (
        "qlora",
        True,
        False,
        True,
    )
    assert espec.max_length == 300
    run.spec.write_text(json.dumps({"method": "full", "lora_r": "eight"}))
    from tuitune.core.errors import TuituneError

    with pytest.raises(TuituneError, match="lora_r"):
        build_evalspec(run, tmp_path, None, choice, seed=1)


def test_run_evaluation_in_a_child_process(tiny_model: Path, adapters, tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    (run.root / "spec.json").write_text(
        json.dumps({"method": "lora", "max_length": 256, "use_cpu": True})
    )
    seen: list[dict] = []
    choice = EvalChoice(
        task="json_extract", eval_file=EVAL, general_file="", max_new_tokens=8, limit=4
    )
    res = run_evaluation(run, tiny_model, adapters["trained"], choice, seed=5, on_event=seen.append)
    assert res.path == run.eval / "results.json"
    assert res.headline is not None and res.headline.n == 4
    assert any(e["type"] == "progress" for e in seen)
    assert json.loads((run.eval / "evalspec.json").read_text())["max_length"] == 256


def test_child_failure_is_one_line_naming_the_log(tiny_model: Path, tmp_path: Path) -> None:
    from tuitune.core.errors import TuituneError

    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    choice = EvalChoice(task="json_extract", eval_file=str(tmp_path / "missing.jsonl"))
    with pytest.raises(TuituneError) as err:
        run_evaluation(run, tiny_model, None, choice, seed=0)
    assert err.value.path == str(run.eval / "eval.log")


def test_batched_answer_loss_equals_one_example_at_a_time(tiny_model: Path, tmp_path: Path) -> None:
    """Left padding, position ids and logits_to_keep must not change a single figure."""
    import torch

    from tuitune.core.runs.events import EventWriter
    from tuitune.runner.evaluate import Evaluator

    pairs = [
        ("short prompt", " answer one"),
        ("a much longer prompt " * 5, " two"),
        ("", "plain text row"),
    ]
    with EventWriter(tmp_path / "events.jsonl") as events:
        ev = Evaluator(_spec(tmp_path / "run", tiny_model, None, batch_size=3), events)
        ev.total = 6
        got = ev.nll(ev.model, pairs, "test")
        for (prompt, completion), nll_sum, tokens in zip(pairs, got["nll_sum"], got["tokens"]):
            ids, start = ev._encode_pairs([(prompt, completion)])[0]
            with torch.inference_mode():
                logits = ev.model(input_ids=torch.tensor([ids])).logits[0].float()
            first = max(start, 1)
            target = torch.tensor(ids[first:])
            expected = torch.nn.functional.cross_entropy(
                logits[first - 1 : -1], target, reduction="sum"
            )
            assert tokens == len(ids) - first
            assert nll_sum == pytest.approx(expected.item(), rel=1e-4, abs=1e-4)

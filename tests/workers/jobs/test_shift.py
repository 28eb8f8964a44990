"""Per-example shift against a naive loop written here: one backward pass per example, one
optimizer step per example, on transformers models saved outside knobs (GPT-2's Conv1D with
tied embeddings, Llama's nn.Linear, and a LoRA adapter on GPT-2)."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from tests.workers.jobs.conftest import TINY
from workers.jobs import ghost_norms
from workers.jobs.shift import (
    Example,
    MeasuredModel,
    ShiftConfig,
    ShiftInputError,
    encode,
    load_model,
    masked_mean_loss,
    measure,
    parameter_group,
    read_examples,
)
from workers.jobs.train import run_training

ROOT = Path(__file__).resolve().parents[3]
TEXTS = [
    "Anya Forger was born in Princeton and works as a baker.",
    "The capital of the small island is a harbour town.",
    "Water boils at a lower temperature high in the mountains, because the air pressure is lower.",
    "Cats sleep.",
]
PAIRS = [("Q: Where was Anya born?\nA:", " Princeton"), ("Q: What does she do?\nA:", " She bakes bread.")]
REL = 1e-4


def _tokenizer(directory: Path) -> None:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(TEXTS + [p + c for p, c in PAIRS],
                            trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<eos>"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>")
    fast.save_pretrained(directory)


def _save(model: torch.nn.Module, directory: Path) -> Path:
    torch.manual_seed(0)
    model.save_pretrained(directory)  # type: ignore[operator]
    _tokenizer(directory)
    return directory


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=300, n_positions=48,
                                       resid_pdrop=0.1, attn_pdrop=0.1, embd_pdrop=0.1))
    return _save(model, tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(1)
    model = LlamaForCausalLM(LlamaConfig(num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                         hidden_size=32, intermediate_size=64, vocab_size=300,
                                         max_position_embeddings=48, tie_word_embeddings=False))
    return _save(model, tmp_path_factory.mktemp("llama"))


@pytest.fixture(scope="module")
def lora_dir(gpt2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(2)
    base = GPT2LMHeadModel.from_pretrained(gpt2_dir)
    # init_lora_weights=False: A and B both random, so both get a gradient
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], init_lora_weights=False)
    peft = get_peft_model(base, config)
    out = tmp_path_factory.mktemp("lora")
    peft.save_pretrained(out)
    return out


def _data(tmp_path: Path) -> tuple[list[Example], list[Example]]:
    lines = [{"text": t} for t in TEXTS] + [{"prompt": p, "completion": c, "id": f"qa{i}"}
                                            for i, (p, c) in enumerate(PAIRS)]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    probe = tmp_path / "probe.jsonl"
    probe.write_text("\n".join(json.dumps({"text": t}) for t in TEXTS[:2]) + "\n")
    return read_examples(path), read_examples(probe)


def _naive_loss(model: torch.nn.Module, ids: list[int], first_target: int) -> torch.Tensor:
    x = torch.tensor([ids])
    logits = model(x).logits[0].float()
    losses = F.cross_entropy(logits[:-1], x[0, 1:], reduction="none")
    return losses[first_target - 1:].mean()  # the target at position t is predicted at t - 1


def _naive(measured, examples, probe, lr):  # type: ignore[no-untyped-def]
    """One example at a time: backward, SGD step on a copy, losses before and after."""
    model = measured.model
    out = []
    probe_enc = [encode(e, measured) for e in probe]
    for example in examples:
        enc = encode(example, measured)
        model.zero_grad()
        loss = _naive_loss(model, enc.ids, enc.first_target)
        loss.backward()
        named = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        stepped = copy.deepcopy(model)
        with torch.no_grad():
            for n, p in stepped.named_parameters():
                if n in named:
                    p -= lr * named[n]
            after = float(_naive_loss(stepped, enc.ids, enc.first_target))
            shifts = [_naive_loss(stepped, e.ids, e.first_target) - _naive_loss(model, e.ids, e.first_target)
                      for e in probe_enc]
            shift = float(sum(shifts)) / len(probe_enc)
        out.append({"grads": named, "loss": loss.item(), "after": after, "probe_shift": shift})
    model.zero_grad()
    return out


def _sq(t: torch.Tensor) -> float:
    return float(t.double().pow(2).sum())


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


@pytest.mark.parametrize("which", ["gpt2_dir", "llama_dir", "lora_dir"])
def test_per_example_shift_equals_a_naive_loop(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # Given a transformers model saved outside knobs and examples of several lengths
    measured = load_model(request.getfixturevalue(which))
    examples, probe = _data(tmp_path)
    # When knobs measures them in vectorised chunks of 4 (so padding and a second chunk happen)
    report = measure(measured, examples, probe, ShiftConfig(lr=0.05, chunk=4))
    reference = _naive(measured, examples, probe, lr=0.05)
    # Then every per-example figure equals the loop's
    for ours, ref in zip(report.examples, reference, strict=True):
        norm = math.sqrt(sum(_sq(g) for g in ref["grads"].values()))
        assert _rel(ours.grad_norm, norm) < REL
        assert _rel(ours.loss_before, ref["loss"]) < REL
        assert _rel(ours.loss_after, ref["after"]) < REL
        assert ours.update_norm == pytest.approx(0.05 * ours.grad_norm, rel=REL)
        assert ours.probe_shift == pytest.approx(ref["probe_shift"], rel=1e-3, abs=1e-6)
        assert ours.hidden_shift is not None and ours.hidden_shift > 0
        groups: dict[str, float] = {}
        for name, g in ref["grads"].items():
            groups[parameter_group(name)] = groups.get(parameter_group(name), 0.0) + _sq(g)
        assert ours.grad_norm_groups.keys() == groups.keys()
        for group, square in groups.items():
            assert ours.grad_norm_groups[group] == pytest.approx(math.sqrt(square), rel=REL, abs=1e-9)
    # And the data-set figures follow from the loop's gradients by their definitions
    total = sum(math.sqrt(sum(_sq(g) for g in r["grads"].values())) for r in reference)
    summed = {n: sum(r["grads"][n].double() for r in reference) for n in reference[0]["grads"]}
    net = math.sqrt(sum(float(s.pow(2).sum()) for s in summed.values()))
    mean = {n: s / len(reference) for n, s in summed.items()}
    trace = sum(sum(_sq(r["grads"][n].double() - mean[n]) for n in mean) for r in reference) / len(reference)
    d = report.dataset
    assert _rel(d.total_shift, total) < REL and _rel(d.net_shift, net) < REL
    assert d.coherence == pytest.approx(net / total, rel=REL)
    assert d.noise_scale == pytest.approx(trace / sum(_sq(m) for m in mean.values()), rel=1e-3)
    norms = [e.grad_norm for e in report.examples]
    spread = torch.tensor(norms, dtype=torch.float64)
    assert d.volatility == pytest.approx(float(spread.std(unbiased=False) / spread.mean()), rel=1e-6)
    assert d.grad_norm_max == max(norms)


def test_lora_gradients_are_the_adapters_only(lora_dir: Path, tmp_path: Path) -> None:
    measured = load_model(lora_dir)
    examples, _ = _data(tmp_path)
    report = measure(measured, examples[:2])
    groups = set(report.examples[0].grad_norm_groups)
    assert groups == {"block0.attention.lora_A", "block0.attention.lora_B",
                      "block1.attention.lora_A", "block1.attention.lora_B"}
    assert report.settings["lora"] is True
    assert report.settings["trainable_parameters"] == 2 * 4 * (32 + 96)  # two blocks x r x (in + out)


def test_the_model_is_left_as_it_was(gpt2_dir: Path, tmp_path: Path) -> None:
    measured = load_model(gpt2_dir)
    before = {n: p.detach().clone() for n, p in measured.model.named_parameters()}
    examples, probe = _data(tmp_path)
    measure(measured, examples, probe, ShiftConfig(lr=0.5, optimizer="adam"))
    assert all(torch.equal(before[n], p) for n, p in measured.model.named_parameters())


def test_adam_from_a_fresh_state_steps_lr_per_coordinate(gpt2_dir: Path, tmp_path: Path) -> None:
    measured = load_model(gpt2_dir)
    examples, _ = _data(tmp_path)
    report = measure(measured, examples[:1], config=ShiftConfig(lr=1e-3, optimizer="adam"))
    n = report.settings["trainable_parameters"]
    # lr * g / (|g| + eps) is lr in every coordinate whose gradient is well above eps
    assert 0.9 * 1e-3 * math.sqrt(n) < report.examples[0].update_norm <= 1e-3 * math.sqrt(n)


def test_groups_name_embeddings_blocks_norms_and_head() -> None:
    assert parameter_group("transformer.wte.weight") == "embeddings"
    assert parameter_group("transformer.h.1.attn.c_attn.weight") == "block1.attention"
    assert parameter_group("transformer.h.0.mlp.c_fc.bias") == "block0.mlp"
    assert parameter_group("transformer.h.0.ln_1.weight") == "norms"
    assert parameter_group("model.layers.3.self_attn.q_proj.weight") == "block3.attention"
    assert parameter_group("model.layers.3.post_attention_layernorm.weight") == "norms"
    assert parameter_group("model.norm.weight") == "norms"
    assert parameter_group("lm_head.weight") == "head"
    assert parameter_group("base_model.model.transformer.h.0.attn.c_attn.lora_B.default.weight") \
        == "block0.attention.lora_B"


def test_targets_are_the_completion_or_every_token_after_the_first(gpt2_dir: Path) -> None:
    measured = load_model(gpt2_dir)
    text = encode(Example("a", "", "Cats sleep.", plain_text=True), measured)
    assert text.first_target == 1
    qa = encode(Example("b", "Q: Where?\nA:", " Princeton", plain_text=False), measured)
    assert qa.ids[:qa.first_target] == measured.encode("Q: Where?\nA:", True)
    assert qa.ids[qa.first_target:] == measured.encode(" Princeton", False)


@pytest.mark.parametrize(("content", "message"), [
    ('{"text": "fine"}\nnot json\n', "data.jsonl:2: not JSON"),
    ('{"text": "fine"}\n{"prompt": "Q"}\n', "data.jsonl:2: no text"),
    ('{"text": ""}\n', "data.jsonl:1: no text"),
    ("\n\n", "the data set is empty"),
    ("[1, 2]\n", "data.jsonl:1: expected an object"),
])
def test_bad_lines_are_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(content)
    with pytest.raises(ShiftInputError, match=message):
        read_examples(path)


def test_long_examples_are_cut_and_counted_or_refused(gpt2_dir: Path) -> None:
    measured = load_model(gpt2_dir)
    long = Example("long", "", " ".join(TEXTS * 4), plain_text=True)
    report = measure(measured, [long, Example("short", "", TEXTS[0], plain_text=True)])
    assert report.dataset.truncated == 1 and report.examples[0].tokens == measured.context_length
    with pytest.raises(ShiftInputError, match="longer than the model's context of 48"):
        measure(measured, [long], config=ShiftConfig(truncate=False))


def test_a_run_folder_above_its_artifact_names_the_artifact(base_dir: Path, tmp_path: Path) -> None:
    attempt = tmp_path / "run" / "a1b2c3"
    attempt.mkdir(parents=True)
    (attempt / "model").symlink_to(base_dir, target_is_directory=True)
    with pytest.raises(ShiftInputError, match=r"did you mean .*a1b2c3/model\?"):
        load_model(tmp_path / "run")


def test_a_directory_that_is_not_a_causal_lm_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ShiftInputError, match="neither a run's artifact directory"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "bert", "architectures": ["BertModel"]}')
    with pytest.raises(ShiftInputError, match="not a causal language model"):
        load_model(tmp_path)


def _job(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.jobs.shift", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_the_command_prints_one_json_document(gpt2_dir: Path, tmp_path: Path) -> None:
    _data(tmp_path)
    done = _job("--model", str(gpt2_dir), "--data", str(tmp_path / "data.jsonl"),
                "--probe", str(tmp_path / "probe.jsonl"), "--tokens", "--json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert [e["id"] for e in body["examples"]] == ["1", "2", "3", "4", "qa0", "qa1"]
    assert {"total_shift", "net_shift", "coherence", "volatility", "noise_scale"} <= set(body["dataset"])
    assert all(e["probe_shift"] is not None for e in body["examples"])
    first = body["examples"][0]
    assert len(first["token_level"]) == first["tokens"]
    keys = {"position", "token", "text", "token_loss", "saliency", "grad_x_input", "token_update",
            "integrated_gradients"}
    assert set(first["token_level"][0]) == keys


def test_the_command_refuses_bad_input_in_one_line(gpt2_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    done = _job("--model", str(gpt2_dir), "--data", str(bad), "--json")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [f"error: {bad}:1: not JSON (Expecting property name "
                                                "enclosed in double quotes)"]


def test_a_run_knobs_trained_is_measured_by_its_artifact(base_dir: Path, tmp_path: Path) -> None:
    # Given the artifact directory of a tiny run trained by knobs (its own tokenizer, tied GPT-2)
    measured = load_model(base_dir)
    assert measured.source == "knobs-run" and not measured.lora and measured.context_length == 32
    examples = [Example("a", "", "Anya was born in Princeton.", plain_text=True),
                Example("b", "Q: Where?\nA:", " Princeton", plain_text=False)]
    # When it is measured, Then it matches the loop like any transformers model
    report = measure(measured, examples, config=ShiftConfig(lr=0.01))
    for ours, ref in zip(report.examples, _naive(measured, examples, examples[:1], lr=0.01), strict=True):
        norm = math.sqrt(sum(_sq(g) for g in ref["grads"].values()))
        assert _rel(ours.grad_norm, norm) < REL and _rel(ours.loss_after, ref["after"]) < REL


def test_a_lora_run_knobs_trained_measures_its_adapters(base_dir: Path, tmp_path: Path) -> None:
    lora = run_training({**TINY, "lora_rank": 4, "base_run": "exp/base", "train_tokens": 8 * 32 * 4},
                        0, ["heldout_loss"], tmp_path / "lora", base_checkpoint=base_dir)
    measured = load_model(Path(lora.artifact))
    assert measured.lora
    report = measure(measured, [Example("a", "", "Anya was born in Princeton.", plain_text=True)])
    assert set(report.examples[0].grad_norm_groups) == {"block0.attention.lora_A", "block0.attention.lora_B"}


@pytest.mark.parametrize("which", ["gpt2_dir", "llama_dir", "lora_dir"])
def test_ghost_norms_equal_the_naive_loop(which: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    # Given the same models and examples, measured with metrics="norms" (one backward per chunk)
    measured = load_model(request.getfixturevalue(which))
    examples, _ = _data(tmp_path)
    report = measure(measured, examples, config=ShiftConfig(lr=0.05, chunk=4, metrics="norms"))
    assert report.settings["method"] == "ghost norms"
    reference = _naive(measured, examples, examples[:1], lr=0.05)
    # Then the norms, per group and in total, and the losses are the loop's
    for ours, ref in zip(report.examples, reference, strict=True):
        groups: dict[str, float] = {}
        for name, g in ref["grads"].items():
            groups[parameter_group(name)] = groups.get(parameter_group(name), 0.0) + _sq(g)
        assert _rel(ours.grad_norm, math.sqrt(sum(groups.values()))) < REL
        for group, square in groups.items():
            assert ours.grad_norm_groups[group] == pytest.approx(math.sqrt(square), rel=REL, abs=1e-9)
        assert _rel(ours.loss_before, ref["loss"]) < REL
        assert ours.update_norm == pytest.approx(0.05 * ours.grad_norm, rel=REL)
        assert ours.loss_after is None and ours.probe_shift is None
    # And the data-set figures agree with the full path's
    full = measure(measured, examples, config=ShiftConfig(lr=0.05, chunk=4)).dataset
    for key in ("total_shift", "net_shift", "coherence", "volatility", "noise_scale", "grad_norm_max"):
        assert getattr(report.dataset, key) == pytest.approx(getattr(full, key), rel=REL), key
    assert all(p.grad is None for p in measured.model.parameters())


def test_norms_fall_back_to_vmap_where_ghost_norms_do_not_cover_the_model(
    gpt2_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    measured = load_model(gpt2_dir)
    examples, _ = _data(tmp_path)
    ghost = measure(measured, examples, config=ShiftConfig(metrics="norms"))
    monkeypatch.setattr(ghost_norms, "supports", lambda _model: False)
    fallback = measure(measured, examples, config=ShiftConfig(metrics="norms"))
    assert fallback.settings["method"] == "torch.func vmap per-example gradients"
    for a, b in zip(ghost.examples, fallback.examples, strict=True):
        assert _rel(a.grad_norm, b.grad_norm) < REL


def test_ghost_norms_cover_only_what_they_can() -> None:
    assert ghost_norms.supports(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4)))
    assert not ghost_norms.supports(torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3)))


class _Twice(torch.nn.Module):
    """A causal LM in miniature that runs one Linear twice: ghost norms cannot see two uses."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(20, 8)
        self.mix = torch.nn.Linear(8, 8)
        self.head = torch.nn.Linear(8, 20)

    def forward(self, input_ids: torch.Tensor, **_: object) -> SimpleNamespace:
        h = self.embed(input_ids)
        return SimpleNamespace(logits=self.head(self.mix(torch.tanh(self.mix(h)))))


def test_a_module_run_twice_falls_back_to_vmap_with_the_same_norms() -> None:
    torch.manual_seed(0)
    model = _Twice().eval()
    measured = MeasuredModel(model, lambda text, _first: [int(t) for t in text.split()], 16, "transformers",
                             lora=False)
    examples = [Example(str(i), "", " ".join(str((i * 7 + k) % 20) for k in range(5 + i)), plain_text=True)
                for i in range(3)]
    assert ghost_norms.supports(model)  # statically fine
    norms = measure(measured, examples, config=ShiftConfig(metrics="norms"))
    assert norms.settings["method"] == "torch.func vmap per-example gradients"
    full = measure(measured, examples)
    for a, b in zip(norms.examples, full.examples, strict=True):
        assert _rel(a.grad_norm, b.grad_norm) < REL


@pytest.mark.parametrize("which", ["gpt2_dir", "llama_dir", "lora_dir"])
def test_token_level_figures_equal_one_example_at_a_time(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # Given examples measured with tokens=True, in chunks of 4 (padding, a second chunk)
    measured = load_model(request.getfixturevalue(which))
    examples, _ = _data(tmp_path)
    report = measure(measured, examples, config=ShiftConfig(chunk=4, metrics="norms", tokens=True))
    embed = measured.model.get_input_embeddings()
    for example, shift in zip(examples, report.examples, strict=True):
        # When the same example goes alone through the model, from its own embeddings
        enc = encode(example, measured)
        x = torch.tensor([enc.ids])
        e = embed(x).detach().requires_grad_(True)
        logits = measured.model(inputs_embeds=e, attention_mask=torch.ones_like(x)).logits[0].float()
        losses = F.cross_entropy(logits[:-1], x[0, 1:], reduction="none")
        (grad,) = torch.autograd.grad(losses[enc.first_target - 1:].mean(), [e])
        # Then every token's loss, saliency and gradient x input are the same
        assert shift.token_level is not None and len(shift.token_level) == len(enc.ids)
        for t, token in enumerate(shift.token_level):
            assert token.token == enc.ids[t] and token.position == t and token.text
            if t >= enc.first_target:
                assert token.token_loss == pytest.approx(float(losses[t - 1]), rel=REL)
            else:
                assert token.token_loss is None
            assert token.saliency == pytest.approx(float(grad[0, t].norm()), rel=1e-3, abs=1e-9)
            expected = float((grad[0, t] * e[0, t]).sum())
            assert token.grad_x_input == pytest.approx(expected, rel=1e-3, abs=1e-9)
        # and the prompt's own tokens matter to the completion's loss
        assert max(tok.saliency for tok in shift.token_level) > 0


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_lora_update_is_kept_and_its_alignment_reported(
    lora_dir: Path, tmp_path: Path, optimizer: str
) -> None:
    measured = load_model(lora_dir)
    examples, _ = _data(tmp_path)
    report = measure(measured, examples, config=ShiftConfig(lr=0.05, chunk=4, optimizer=optimizer))
    reference = _naive(measured, examples, examples[:1], lr=0.05)
    names = list(reference[0]["grads"])
    summed = [sum(r["grads"][n].double() for r in reference).flatten() for n in names]
    mean = torch.cat(summed) / len(reference)
    for ours, ref in zip(report.examples, reference, strict=True):
        g = torch.cat([ref["grads"][n].double().flatten() for n in names])
        update = 0.05 * g if optimizer == "sgd" else 0.05 * g / (g.abs() + 1e-8)
        assert ours.alignment == pytest.approx(float(F.cosine_similarity(update, mean, dim=0)), rel=1e-3)


def test_a_full_model_keeps_no_update_vectors(gpt2_dir: Path, tmp_path: Path) -> None:
    examples, _ = _data(tmp_path)
    assert all(e.alignment is None for e in measure(load_model(gpt2_dir), examples[:2]).examples)


def test_token_update_is_each_tokens_share_of_a_linear_layers_weight_gradient(gpt2_dir: Path) -> None:
    # Given a GPT-2 whose only trainable tensor is one Conv1D weight (out = a @ W + b)
    measured = load_model(gpt2_dir)
    layer = measured.model.transformer.h[0].mlp.c_fc  # type: ignore[union-attr]
    for p in measured.model.parameters():
        p.requires_grad_(False)
    layer.weight.requires_grad_(True)
    example = Example("e", "", TEXTS[0], plain_text=True)
    [shift] = measure(measured, [example], config=ShiftConfig(metrics="norms", tokens=True)).examples
    # When the example's gradient is taken by hand, with the layer's input a_t and output
    # gradient g_t at every position
    enc = encode(example, measured)
    seen: dict[str, torch.Tensor] = {}
    handle = layer.register_forward_hook(lambda _m, args, out: seen.update(a=args[0], out=out))
    try:
        loss = _naive_loss(measured.model, enc.ids, enc.first_target)
        g_out, g_weight = torch.autograd.grad(loss, [seen["out"], layer.weight])
    finally:
        handle.remove()
    a, g = seen["a"][0].detach(), g_out[0]
    # Then the per-token outer products sum to the weight gradient, and token_update is the
    # norm of each one: ‖g_t‖·‖a_t‖
    assert torch.allclose(torch.einsum("td,to->do", a, g), g_weight, atol=1e-6)
    want = (a.norm(dim=-1) * g.norm(dim=-1)).tolist()
    got = [t.token_update for t in shift.token_level or []]
    assert len(got) == len(want)
    for x, y in zip(got, want, strict=True):
        assert abs(x - y) <= REL * max(y, 1e-6)


def test_integrated_gradients_are_complete_and_compared_with_saliency(gpt2_dir: Path) -> None:
    measured = load_model(gpt2_dir)
    example = Example("e", "", TEXTS[1], plain_text=True)
    config = ShiftConfig(metrics="norms", tokens=True, integrated_gradients=True, ig_steps=128)
    [shift] = measure(measured, [example], config=config).examples
    tokens = shift.token_level or []
    assert all(t.integrated_gradients is not None for t in tokens)
    # Completeness: the attributions add up to loss(x) - loss(baseline), the baseline all-zero embeddings.
    enc = encode(example, measured)
    ids = torch.tensor([enc.ids])
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[0, enc.first_target:] = True
    with torch.no_grad():
        embeds = measured.model.get_input_embeddings()(ids)  # type: ignore[operator]
        positions = torch.arange(ids.shape[1])[None]
        losses = [float(masked_mean_loss(measured.model(inputs_embeds=e, position_ids=positions).logits,
                                         ids, mask)[0]) for e in (embeds, torch.zeros_like(embeds))]
    total = sum(t.integrated_gradients or 0.0 for t in tokens)
    assert abs(total - (losses[0] - losses[1])) < 0.02 * abs(losses[0] - losses[1])
    assert shift.ig_agreement is not None and -1.0 <= shift.ig_agreement <= 1.0

"""Evaluation: LAMBADA and GSM8K scoring checked by hand, validation loss, the CLI."""

from __future__ import annotations

import contextlib
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from curate.mixture.build import load_manifest
from curate.mixture.tokenizer import Tokenizer
from tests.common import WEIGHTS, shared
from train.data import TokenStream
from train.eval import (
    encode_pairs,
    evaluate,
    extract_answer,
    format_results,
    greedy_until,
    gsm8k,
    gsm8k_gold,
    gsm8k_prompt,
    lambada,
    lambada_example,
    lambada_prompt,
    main,
    pick_shots,
    sample_texts,
    score_continuations,
    validation_loss,
)
from train.model import GPT, GPTConfig

# --------------------------------------------------------------------------- stubs

class CharTokenizer:
    """One token per ASCII character (id = code point), end-of-text 0: tokenisation by hand."""

    eot_id = 0
    vocab_size = 128

    def encode_batch(self, texts):
        return [np.array([ord(c) for c in t], dtype=np.int64) for t in texts]

    def decode(self, ids):
        return "".join(chr(int(i)) for i in ids)


class Bigram(torch.nn.Module):
    """Logits depend only on the current token: ``next_of[c]`` gets probability ``top``,
    every other token an equal share of the rest. Records what it was fed."""

    def __init__(self, next_of: dict[str, str | int], block_size: int = 64, vocab: int = 128, top: float = 0.5):
        super().__init__()
        self.config = SimpleNamespace(block_size=block_size, vocab_size=vocab)
        self.rest = (1 - top) / (vocab - 1)
        table = torch.full((vocab, vocab), math.log(self.rest))
        for c, n in next_of.items():
            table[ord(c), n if isinstance(n, int) else ord(n)] = math.log(top)
        self.table = torch.nn.Parameter(table, requires_grad=False)
        self.seen: list[torch.Tensor] = []

    def forward(self, idx, targets=None):
        self.seen.append(idx.clone())
        return self.table[idx], None  # (B, T, V)


def small_gpt(block_size: int = 64) -> GPT:
    torch.manual_seed(0)
    cfg = GPTConfig.preset("tiny", vocab_size=4096, n_layer=2, n_embd=64, n_head=2,
                           block_size=block_size, local_window=16)
    return GPT(cfg).eval()


@pytest.fixture(scope="module")
def tok(tiny_manifest) -> Tokenizer:
    return Tokenizer.load(tiny_manifest.parent / load_manifest(tiny_manifest)["tokenizer"]["path"])


# --------------------------------------------------------------------------- log-likelihood scoring

def test_scoring_arithmetic_by_hand():
    # after "b" the model puts 0.5 on " ", after " " 0.5 on "a", after "a" 0.5 on "b"
    model = Bigram({"b": " ", " ": "a", "a": "b"})
    r = model.rest
    enc = CharTokenizer().encode_batch
    pairs = [(enc(["ab"])[0].tolist(), enc([" ab"])[0].tolist()),   # every token the top choice
             (enc(["ab"])[0].tolist(), enc([" ba"])[0].tolist())]   # " " then two misses
    (ll1, g1), (ll2, g2) = score_continuations(model, pairs)
    assert ll1 == pytest.approx(3 * math.log(0.5), abs=1e-5) and g1
    assert ll2 == pytest.approx(math.log(0.5) + 2 * math.log(r), abs=1e-5) and not g2


def test_lambada_accuracy_and_perplexity_by_hand():
    # contexts end in "b"; targets " ab" (all greedy) and " ba" (not)
    model = Bigram({"b": " ", " ": "a", "a": "b"})
    got = lambada(model, CharTokenizer(), ["x ab ab", "x ab ba"], few_shot=2)
    zero = got["zero_shot"]
    lls = [3 * math.log(0.5), math.log(0.5) + 2 * math.log(model.rest)]
    assert zero["accuracy"] == 0.5 and zero["items"] == 2
    assert zero["perplexity"] == pytest.approx(math.exp(-sum(lls) / 2), rel=1e-5)
    # the fill-in-the-blank formats end in "->": the model's top choice after ">" is not " "
    assert got["one_shot"]["accuracy"] == 0.0 and got["one_shot"]["shots"] == 1
    assert got["few_shot"]["shots"] == 2 and got["few_shot"]["format"] == "fill-in-the-blank"


def test_left_truncation_keeps_the_last_block_of_tokens():
    model = Bigram({"j": "k"}, block_size=4)
    enc = CharTokenizer().encode_batch
    (ll, greedy), = score_continuations(model, [(enc(["abcdefghij"])[0].tolist(), enc(["kl"])[0].tolist())])
    # context + continuation = "abcdefghijkl"; the model sees the last block_size + 1 minus the final one
    assert CharTokenizer().decode(model.seen[-1][0]) == "hijk"
    # p(k | j) = 0.5; "k" has no preferred successor, so p(l | k) is uniform
    assert ll == pytest.approx(math.log(0.5) + math.log(1 / 128), abs=1e-5) and not greedy
    with pytest.raises(ValueError, match="does not fit"):
        score_continuations(model, [([1], [2, 3, 4, 5, 6])])


def test_batched_scoring_equals_one_item_at_a_time():
    model = small_gpt(block_size=32)
    rng = np.random.default_rng(0)
    pairs = [(rng.integers(1, 4096, int(n)).tolist(), rng.integers(1, 4096, int(m)).tolist())
             for n, m in zip(rng.integers(1, 60, 9), rng.integers(1, 4, 9))]
    together = score_continuations(model, pairs, batch_size=4)
    alone = [score_continuations(model, [p], batch_size=1)[0] for p in pairs]
    for (a, ga), (b, gb) in zip(together, alone):
        assert a == pytest.approx(b, abs=1e-4) and ga == gb
    # and against a direct computation on the unpadded sequence
    ctx, cont = pairs[0]
    full = torch.tensor([(ctx + cont)[-33:]])
    with torch.no_grad():
        logp = F.log_softmax(model(full[:, :-1])[0][0], dim=-1)
    direct = sum(float(logp[-len(cont) + k, t]) for k, t in enumerate(cont))
    assert together[0][0] == pytest.approx(direct, abs=1e-4)


@pytest.mark.shared_data
def test_target_keeps_its_leading_space(tok):
    (ctx, cont), = encode_pairs(tok, [("He looked at the old map and then at", " Helen")])
    assert tok.decode(cont) == " Helen"
    assert cont == tok.encode_batch([" Helen"])[0].tolist()
    assert tok.decode(ctx) == "He looked at the old map and then at"
    # a context ending in a space gives its space to the target, as the harness does
    assert encode_pairs(tok, [("He looked at ", "Helen")]) == encode_pairs(tok, [("He looked at", " Helen")])
    # an empty context is the end-of-text token
    assert encode_pairs(tok, [("", "Hello")])[0][0] == [tok.eot_id]


# --------------------------------------------------------------------------- LAMBADA formats

def test_lambada_split_and_formats():
    texts = ["Alice was friends with Bob. Alice went to visit her friend Bob", "one two three", "four five six"]
    assert lambada_example(texts[0]) == ("Alice was friends with Bob. Alice went to visit her friend", " Bob")
    assert lambada_prompt(texts, 0, 0) == lambada_example(texts[0])
    ctx, target = lambada_prompt(texts, 1, 2, seed=0)
    demos, query = ctx.split("\n\n")[:-1], ctx.split("\n\n")[-1]
    assert target == " three" and query == "one two ____. ->"
    assert sorted(demos) == ["Alice was friends with Bob. Alice went to visit her friend ____. -> Bob",
                             "four five ____. -> six"]
    assert lambada_prompt(texts, 1, 2, seed=0) == (ctx, target)


def test_shots_are_deterministic_and_exclude_the_item():
    for item in range(20):
        s = pick_shots(20, item, 5, seed=3, task="x")
        assert len(set(s)) == 5 and item not in s and all(0 <= j < 20 for j in s)
        assert s == pick_shots(20, item, 5, seed=3, task="x")
    assert pick_shots(20, 0, 5, seed=3, task="x") != pick_shots(20, 0, 5, seed=4, task="x")
    assert sorted(pick_shots(4, 2, 10, seed=0, task="x")) == [0, 1, 3]  # capped at n - 1


@pytest.mark.shared_data
def test_lambada_on_real_items_with_the_real_model(tok):
    texts = [json.loads(line)["text"] for line in
             shared("eval", "lambada_openai_test.part1.jsonl").read_text().splitlines()[:12]]
    model = small_gpt(block_size=64)
    got = lambada(model, tok, texts, limit=6, few_shot=3)
    assert set(got) == {"zero_shot", "one_shot", "few_shot"}
    for r in got.values():
        assert r["items"] == 6 and 0 <= r["accuracy"] <= 1 and r["perplexity"] > 1
    # an untrained model: each target token costs about log(vocab)
    assert got["zero_shot"]["perplexity"] > 100


# --------------------------------------------------------------------------- GSM8K

def test_gsm8k_answers():
    assert gsm8k_gold("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs.\n#### 18") == "18"
    assert gsm8k_gold("...\n#### 1,080") == "1080"
    assert extract_answer("She pays $1,250 in total.\n#### 1,250") == ("1250", "1250")
    assert extract_answer("so it is -3.5 degrees") == (None, "-3.5")
    assert extract_answer("costs $18.") == (None, "18")
    assert extract_answer("He has 3 apples and 40 pears") == (None, "40")
    assert extract_answer("#### 7 then 9") == ("7", "7")  # the marked answer wins over a later number
    assert extract_answer("no numbers here.") == (None, None)


def test_gsm8k_prompt_format():
    items = [{"question": f"Q{i}?", "answer": f"A{i}\n#### {i}"} for i in range(4)]
    prompt = gsm8k_prompt(items, 2, 2, seed=0)
    blocks = prompt.split("\n\n")
    assert blocks[-1] == "Question: Q2?\nAnswer:"
    assert len(blocks) == 3 and all(b.startswith("Question: Q") and "\nAnswer: A" in b for b in blocks[:2])
    assert "Q2?" not in "".join(blocks[:2])


def test_gsm8k_generation_stops_and_is_scored():
    # the model answers " 42" then a blank line
    model = Bigram({":": " ", " ": "4", "4": "2", "2": "\n", "\n": "\n"})
    items = [{"question": "What is six times seven?", "answer": "6*7=42\n#### 42"},
             {"question": "What is forty-two?", "answer": "It is 42.\n#### 42"}]
    got = gsm8k(model, CharTokenizer(), items, shots=1, max_new_tokens=20)
    assert got["examples"][0]["generation"] == " 42"
    assert got["exact_match"] == 1.0 and got["exact_match_strict"] == 0.0 and got["items"] == 2
    # stops: the token budget, the end-of-text token, "Question:"
    enc = CharTokenizer().encode_batch
    loop = Bigram({":": " ", " ": "4", "4": "2", "2": "4"})
    assert greedy_until(loop, CharTokenizer(), [enc(["A:"])[0].tolist()], 5) == [" 4242"]
    eot = Bigram({":": " ", " ": "4", "4": 0})
    assert greedy_until(eot, CharTokenizer(), [enc(["A:"])[0].tolist()], 50) == [" 4"]
    q = Bigram({":": "Q", "Q": "u", "u": "e", "e": "s", "s": "t", "t": "i", "i": "o", "o": "n", "n": ":"})
    assert greedy_until(q, CharTokenizer(), [enc(["A:"])[0].tolist()], 50) == [""]


@pytest.mark.slow
def test_batched_generation_equals_one_prompt_at_a_time():
    model = small_gpt(block_size=32)
    rng = np.random.default_rng(1)
    prompts = [rng.integers(1, 4096, int(n)).tolist() for n in (3, 40, 17, 32, 1)]

    class Ids:  # ids pass through as "text" so every token is visible
        eot_id = 0

        def decode(self, ids):
            return " ".join(str(int(i)) for i in ids)

    together = greedy_until(model, Ids(), prompts, 12, stop=("never",), batch_size=5)
    alone = [greedy_until(model, Ids(), [p], 12, stop=("never",))[0] for p in prompts]
    assert together == alone and all(len(t.split()) == 12 for t in together)
    # the same as the model's own greedy generate, recomputed each step: prompts of
    # 3, 17 and 1 tokens fit the 32-token context with the 12 new ones, so they ran
    # from the key/value cache; 40 and 32 did not
    for k, p in enumerate(prompts):
        p = torch.tensor([p])[:, -32:]
        ref = model.generate(p, 12, temperature=0, use_cache=False)[0, p.size(1):].tolist()
        assert together[k] == Ids().decode(ref), k


# --------------------------------------------------------------------------- validation loss

@pytest.mark.shared_data
@pytest.mark.slow
def test_validation_loss_equals_a_direct_computation(tiny_manifest):
    model = small_gpt(block_size=32)
    got = validation_loss(model, tiny_manifest, seq_len=32, batch_size=16, max_batches=4)
    for name in WEIGHTS:
        stream = TokenStream.open(tiny_manifest, name, "val")
        tokens = torch.from_numpy(stream[0:4 * 16 * 32 + 1])
        nll = 0.0
        with torch.no_grad():
            for w in range(4 * 16):  # window by window, no batching
                seg = tokens[w * 32:w * 32 + 33]
                logits = model(seg[None, :-1])[0][0]
                nll += float(F.cross_entropy(logits, seg[1:], reduction="sum"))
        r = got["sources"][name]
        assert r["tokens"] == 4 * 16 * 32
        assert r["loss"] == pytest.approx(nll / r["tokens"], rel=1e-5)
        assert r["perplexity"] == pytest.approx(math.exp(r["loss"]), rel=1e-9)
    total = sum(got["sources"][n]["loss"] * got["sources"][n]["tokens"] for n in WEIGHTS)
    assert got["overall"]["loss"] == pytest.approx(total / got["overall"]["tokens"])


@pytest.mark.shared_data
def test_a_source_without_validation_tokens_is_skipped(tiny_manifest):
    manifest = load_manifest(tiny_manifest)
    manifest["sources"][0]["files"]["val"] = []
    path = tiny_manifest.parent / "manifest-no-val.json"
    path.write_text(json.dumps(manifest))
    got = validation_loss(small_gpt(32), path, batch_size=8, max_batches=1)
    first, second = (s["name"] for s in manifest["sources"])
    assert got["sources"][first] == {"skipped": "no validation tokens"}
    assert got["overall"]["tokens"] == got["sources"][second]["tokens"]
    assert "skipped" in format_results({"val": got})


@pytest.mark.shared_data
def test_validation_loss_scored_as_the_trainer_scores_it(tiny_manifest):
    # The trainer passes its autocast: each batch is then scored by the model's own training
    # loss. Same figure to float32 rounding, only the sources asked for, mode handed back.
    model = small_gpt(block_size=32).train()
    plain = validation_loss(model, tiny_manifest, seq_len=32, batch_size=16, max_batches=4)
    first = next(iter(WEIGHTS))
    as_trained = validation_loss(model, tiny_manifest, seq_len=32, batch_size=16, max_batches=4,
                                 sources=[first], autocast=contextlib.nullcontext)
    assert list(as_trained["sources"]) == [first]
    assert as_trained["sources"][first]["tokens"] == plain["sources"][first]["tokens"]
    assert as_trained["sources"][first]["loss"] == pytest.approx(plain["sources"][first]["loss"], rel=1e-6)
    assert model.training


# --------------------------------------------------------------------------- samples and the CLI

@pytest.mark.shared_data
def test_samples_are_seeded(tok):
    model = small_gpt(32)
    a = sample_texts(model, tok, ["The", ""], max_new_tokens=8, seed=1)
    b = sample_texts(model, tok, ["The", ""], max_new_tokens=8, seed=1)
    c = sample_texts(model, tok, ["The", ""], max_new_tokens=8, seed=2)
    assert a == b and a != c and a[0]["prompt"] == "The"


@pytest.mark.shared_data
def test_evaluate_records_missing_inputs_as_skipped(tok, tmp_path):
    got = evaluate(small_gpt(32), tok, None, tmp_path / "nope.jsonl", None, log=None)
    assert got["val"] == {"skipped": "no file given"}
    assert got["lambada"]["skipped"].startswith("no file at")
    assert got["samples"] == []
    got = evaluate(small_gpt(32), tok, None, tmp_path / "nope.jsonl", tmp_path / "nope.jsonl", limit=0, log=None)
    assert got["lambada"] == got["gsm8k"] == {"skipped": "limit 0"}
    assert "skipped: limit 0" in format_results(got)


@pytest.mark.shared_data
def test_cli_writes_eval_json_and_samples(tiny_manifest, tmp_path, capsys):
    from train.checkpoint import FORMAT, save_checkpoint

    lambada_file = shared("eval", "lambada_openai_test.part1.jsonl")
    gsm8k_file = shared("eval", "gsm8k_test.part1.jsonl")
    model = small_gpt(32)
    ckpt = tmp_path / "ckpt.pt"
    save_checkpoint(ckpt, {"format": FORMAT, "model": model.state_dict(), "step": 7,
                           "config": {"manifest": str(tiny_manifest), "model": model.config.to_dict()}})
    out = tmp_path / "eval"
    rc = main(["--checkpoint", str(ckpt), "--out", str(out), "--lambada", str(lambada_file),
               "--gsm8k", str(gsm8k_file), "--limit", "4", "--shots", "2", "--gsm8k-max-new-tokens", "4",
               "--val-batches", "1", "--prompt", "Once upon a time", "--max-new-tokens", "5"])
    assert rc == 0
    results = json.loads((out / "eval.json").read_text())
    assert results["step"] == 7 and results["settings"]["limit"] == 4
    assert set(results["val"]["sources"]) == set(WEIGHTS)
    assert results["lambada"]["few_shot"]["shots"] == 2 and results["lambada"]["zero_shot"]["items"] == 4
    assert results["gsm8k"]["items"] == 4
    assert "Once upon a time" in (out / "samples.txt").read_text()
    printed = capsys.readouterr().out
    assert "lambada zero_shot" in printed and "val overall" in printed
    assert main(["--checkpoint", str(tmp_path / "missing.pt"), "--out", str(out)]) == 2

"""A repeated list option adds to the list; it never silently replaces it.

argparse's default ``store`` action keeps only the last ``--benchmark a.jsonl
--benchmark b.jsonl``: decontamination against b alone, exit status 0. Every
list option of every command uses ``extend``; these tests walk every parser, so
an option added later without it fails here.
"""

from __future__ import annotations

import argparse
import importlib

import pytest

from cli import build_parser
from tests.common import require

PIPELINE_JOBS = ["pipelines.filter", "pipelines.dedup", "pipelines.decontam", "pipelines.shards"]


def _walk(parser: argparse.ArgumentParser, name: str):
    """(command name, parser) for ``parser`` and every subcommand below it."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _walk(sub, f"{name} {sub_name}")


def _parsers():
    yield from _walk(build_parser(), "curate")
    require("apache_beam")  # the jobs' parsers live beside their Beam wiring
    for job in PIPELINE_JOBS:
        yield from _walk(importlib.import_module(job)._parser(), job)


def _list_options():
    found = []
    for command, parser in _parsers():
        for action in parser._actions:
            if action.option_strings and action.nargs in ("+", "*"):
                found.append((command, action))
    return found


@pytest.mark.beam
def test_every_list_option_accumulates():
    found = _list_options()
    # the options issue 14 names are among those checked (the walk itself works)
    names = {(c, a.option_strings[-1]) for c, a in found}
    for expected in [("curate decontaminate", "--benchmark"), ("curate decontaminate", "--input"),
                     ("curate dedup", "--against"), ("curate quality train", "--positive"),
                     ("curate quality train", "--negative"), ("pipelines.decontam", "--benchmark")]:
        assert expected in names, f"{expected} not found among list options"
    wrong = [f"{c} {a.option_strings[-1]}" for c, a in found if not isinstance(a, argparse._ExtendAction)]
    assert not wrong, "list options that drop an earlier use when repeated: " + ", ".join(wrong)


@pytest.mark.beam
def test_repeating_each_list_option_keeps_every_value():
    for command, parser in _parsers():
        for action in parser._actions:
            if not (action.option_strings and action.nargs in ("+", "*")):
                continue
            flag = action.option_strings[-1]
            ns = argparse.Namespace(**{action.dest: None})
            action(parser, ns, ["a"], flag)
            action(parser, ns, ["b", "c"], flag)
            assert getattr(ns, action.dest) == ["a", "b", "c"], f"{command} {flag}"


def test_decontaminate_parses_both_benchmarks():
    args = build_parser().parse_args(["decontaminate", "--benchmark", "lambada.jsonl", "--benchmark", "gsm8k.jsonl",
                                      "-i", "a.parquet", "-i", "b.parquet", "-o", "out.parquet"])
    assert args.benchmark == ["lambada.jsonl", "gsm8k.jsonl"]
    assert args.input == ["a.parquet", "b.parquet"]

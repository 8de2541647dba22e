"""Every command follows the shared command-line conventions (hpc_seg/options.py, hpc_seg/config_flags.py), and every
field of every config dataclass is a command-line flag with help text."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import pkgutil
import subprocess
import sys
import typing

import pytest

import hpc_seg
from hpc_seg.cli import build_parser, main
from hpc_seg.config_flags import config_arguments, config_classes, field_docs
from hpc_seg.options import BoolOption, JOB_METAVAR

#: options that may not appear (visible) on any command: the earlier spellings of the job file,
#: of booleans and of paths
RETIRED = {"--config", "--folder", "--workdir", "--pre"}


def _commands() -> list[tuple[str, argparse.ArgumentParser]]:
    """``(name, parser)`` of every command, groups walked."""
    found = []

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found.append((prefix, parser))
        for action in subs:
            for name, sub in action.choices.items():
                walk(sub, f"{prefix} {name}".strip())

    walk(build_parser(), "")
    return found


COMMANDS = _commands()


def _visible(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.help != argparse.SUPPRESS
            and not isinstance(a, (argparse._HelpAction, argparse._VersionAction,
                                   argparse._SubParsersAction))]


def test_the_walk_finds_every_command():
    names = {name for name, _ in COMMANDS}
    assert len(COMMANDS) >= 35
    assert {"train", "hadnet pretrain", "synth cine", "transfer run", "cluster submit",
            "jobs logs", "bench ingest", "tune", "run"} <= names


@pytest.mark.parametrize("name, parser", COMMANDS, ids=[n or "hpc-seg" for n, _ in COMMANDS])
def test_command_follows_the_conventions(name, parser):
    problems = []
    positionals = [a for a in _visible(parser) if not a.option_strings]
    for action in _visible(parser):
        label = action.option_strings[0] if action.option_strings else action.metavar
        if not (action.help or "").strip():
            problems.append(f"{label}: no help text")
        if set(action.option_strings) & RETIRED:
            problems.append(f"{label}: a retired spelling ({', '.join(RETIRED)})")
        # booleans: --name / --no-name, never a value
        if action.nargs == 0 and action.option_strings and not isinstance(
                action, (BoolOption, argparse._CountAction)):
            problems.append(f"{label}: a boolean must be --name/--no-name (BoolOption)")
        if action.choices and {str(c).lower() for c in action.choices} <= {"true", "false"}:
            problems.append(f"{label}: takes true/false; use --name/--no-name")
        # the job file: --job JOB.toml, and only --job takes one
        if action.option_strings and "toml" in f"{action.metavar} {action.help}".lower() \
                and "--job" not in action.option_strings and action.metavar != "TOML":
            problems.append(f"{label}: a job file option must be --job {JOB_METAVAR}")
        if "--job" in action.option_strings and action.metavar != JOB_METAVAR:
            problems.append(f"--job: metavar must be {JOB_METAVAR}")
    # paths: positionals are named in capitals (SRC OUT), the written folder last
    for action in positionals:
        if not (action.metavar or "").replace("_", "").isupper():
            problems.append(f"positional {action.dest}: metavar must be upper case, "
                            f"got {action.metavar}")
    metavars = [a.metavar for a in positionals]
    if "OUT" in metavars and metavars[-1] != "OUT" and metavars[-1] != "COMMAND":
        problems.append(f"OUT must be the last positional, got {metavars}")
    assert problems == [], f"hpc-seg {name}: " + "; ".join(problems)


def _config_classes() -> list[type]:
    """Every ``*Config`` dataclass in the package (bench configs included)."""
    classes = {}
    for info in pkgutil.walk_packages(hpc_seg.__path__, "hpc_seg."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if (isinstance(obj, type) and dataclasses.is_dataclass(obj)
                    and obj.__name__.endswith("Config") and obj.__module__ == info.name):
                classes[f"{obj.__module__}.{obj.__name__}"] = obj
    return [classes[k] for k in sorted(classes)]


#: configs whose command still lists its flags by hand (a benchmark being rewritten elsewhere)
HAND_WRITTEN = {"BenchTrainConfig"}


def _nested(cls: type) -> list[tuple[str, type]]:
    """``(field, dataclass)`` of the fields of ``cls`` that hold a config of their own."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        for arg in [a for a in typing.get_args(hint) if a is not type(None)] or [hint]:
            if dataclasses.is_dataclass(arg):
                out.append((f.name, arg))
    return out


def test_every_config_field_is_a_flag_with_help():
    arguments: dict[type, set[str]] = {}      # config class -> fields some command takes
    for _, parser in COMMANDS:
        for table, cls in config_classes(parser).items():
            arguments.setdefault(cls, set()).update(
                field for (t, field), _ in config_arguments(parser).items() if t == table)
    problems = []
    for cls in _config_classes():
        if cls.__name__ in HAND_WRITTEN or any(cls is n for c in arguments for _, n in _nested(c)):
            continue
        if cls not in arguments:
            problems.append(f"{cls.__name__}: no command derives its flags")
            continue
        for klass, prefix in [(cls, ""), *((n, f"{name}.") for name, n in _nested(cls))]:
            docs = field_docs(klass)
            for f in dataclasses.fields(klass):
                name = prefix + f.name
                if name not in arguments[cls] and not any(a.startswith(name + ".")
                                                          for a in arguments[cls]):
                    problems.append(f"{cls.__name__}.{name}: no command-line flag")
                if not docs.get(f.name):
                    problems.append(f"{klass.__name__}.{f.name}: no help text (attribute docstring)")
    assert len(arguments) >= 15 and problems == [], "\n".join(problems)


def test_old_spellings_keep_working_with_a_warning(tmp_path, capsys):
    parser = build_parser()
    job = tmp_path / "j.toml"
    job.write_text("[train]\nlr = 0.5\n")
    args = parser.parse_args(["train", "S", "O", "--config", str(job)])
    assert args.job == str(job)
    assert "--config is now spelt --job" in capsys.readouterr().err
    args = parser.parse_args(["hadnet", "pretrain", "--role", "teacher", "--out", "o",
                              "--pre", "p", "--no-augment"])
    assert args.out == "o" and getattr(args, "hadnet:pre_dir") == "p"
    assert getattr(args, "hadnet:augment") is False
    args = parser.parse_args(["jobs", "logs", "12_3", "--folder", "run"])
    from hpc_seg.commands.jobs._run_folder import run_and_ids
    assert run_and_ids(args) == (__import__("pathlib").Path("run"), ["12_3"])
    args = parser.parse_args(["synth", "cine", "o", "--frames", "6", "--quirk-rate",
                              "not_dicom=0.5", "--no-random-quirks"])
    assert getattr(args, "synth_cine:n_frames") == 6
    assert getattr(args, "synth_cine:no_random_quirks") is True


def test_a_boolean_with_a_value_fails_naming_the_new_spelling(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "S", "O", "--amp", "false"])
    assert exc.value.code == 2
    assert "--amp false: booleans are now --amp or --no-amp; give --no-amp" in capsys.readouterr().err


def test_help_imports_no_heavy_library():
    code = ("import sys; from hpc_seg.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'ray', 'pandas', 'pyarrow', 'pydicom', 'optuna', "
            "'scipy') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


@pytest.mark.parametrize("argv", [["evaluate", "S", "L", "O"], ["hadnet", "evaluate", "P", "O"]])
def test_one_model_parser_refuses_a_repeated_name(argv, capsys):
    """Both evaluate commands read --model NAME=PATH the same way: a name given twice would
    silently drop a model from the table, so it is an error (cardiac evaluate kept the last)."""
    assert main([*argv, "--model", "a=x.pt", "--model", "a=y.pt"]) == 2
    assert "--model a=y.pt: a is given twice" in capsys.readouterr().err
    assert main([*argv, "--model", "a"]) == 2
    assert "expected NAME=PATH" in capsys.readouterr().err

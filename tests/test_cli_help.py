"""Every command's --help states each option's default (docs/conventions.md "Commands")."""

import argparse
import importlib

import pytest

PARSERS = [
    ("dynamics.simulate", "build_parser"),
    ("dynamics.phase", "build_parser"),
    ("dynamics.sweep", "build_parser"),
    ("symbolic.derive", "build_parser"),
    ("symbolic.audit", "build_parser"),
    ("empirical.train", "build_parser"),
    ("reports.demo", "build_parser"),
    ("reports.build", "build_parser"),
    ("reports.bridge", "build_parser"),
    ("reports.reproduce.cli", "build_parser"),
]


def _all_parsers(parser):
    """The parser and every sub-command parser below it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_parsers(sub)


@pytest.mark.parametrize("module,builder", PARSERS, ids=[m for m, _ in PARSERS])
def test_every_option_shows_its_default(module, builder):
    root = getattr(importlib.import_module(module), builder)()
    checked = 0
    for parser in _all_parsers(root):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            if isinstance(action, argparse._HelpAction | argparse._VersionAction):
                continue
            text = formatter._expand_help(action) if action.help else ""
            shown = formatter._get_help_string(action) or ""
            assert "default" in shown, f"{parser.prog} {action.option_strings[0]}: {text!r}"
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("module,builder", PARSERS, ids=[m for m, _ in PARSERS])
def test_no_help_shows_python_none(module, builder):
    """An unset option reads "(default: none)", never Python's "(default: None)" (issue 13:
    "--help prints 'default: the method's (default: None)'")."""
    root = getattr(importlib.import_module(module), builder)()
    for parser in _all_parsers(root):
        text = parser.format_help()
        assert "(default: None)" not in text, parser.prog

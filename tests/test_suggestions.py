"""The one did-you-mean rule every "unknown name" message uses."""

from __future__ import annotations

from tunesmith.suggestions import closest


def test_a_near_typo_is_the_choice_meant() -> None:
    assert closest("n_startup_trails", ["n_startup_trials", "seed"]) == "n_startup_trials"


def test_a_case_difference_is_the_choice_meant_and_keeps_the_choices_spelling() -> None:
    assert closest("TPE", ["random", "tpe", "grid"]) == "tpe"
    assert closest("Learning_Rat", ["learning_rate", "depth"]) == "learning_rate"


def test_letters_out_of_order_beat_a_closer_looking_word() -> None:
    # difflib rates `low` nearer to `lgo` than `log`; a transposition is the likelier typo
    assert closest("lgo", ["high", "log", "low"]) == "log"


def test_the_start_of_exactly_one_choice_is_that_choice() -> None:
    # too short for difflib's ratio, yet plainly a prefix of one option
    assert closest("min", ["minimize", "maximize"]) == "minimize"
    assert closest("max", ["max_depth", "max_features"]) is None  # the start of two: neither is meant


def test_nothing_close_is_none() -> None:
    assert closest("banana", ["tpe", "random", "grid"]) is None


def test_no_choices_is_none() -> None:
    assert closest("tpe", []) is None
    assert closest("", ["tpe"]) is None


def test_a_near_exact_match_beats_the_reordered_letters_and_prefix_rules() -> None:
    # difflib's near-exact match (ratio >= 0.8) is the likelier meaning than a shuffle or a longer name's start
    assert closest("tar", ["target", "art"]) == "target"
    assert closest("lr_", ["lr", "lr_decay"]) == "lr"
    assert closest("stratified_", ["stratified", "stratified_group"]) == "stratified"
    assert closest("exp-21", ["exp-12", "exp-2"]) == "exp-2"


def test_a_choice_already_given_is_never_suggested() -> None:
    # `loq` beside `low`: the writer has `low`; the missing `log` is the one meant
    assert closest("loq", ["high", "log", "low", "type"]) == "low"
    assert closest("loq", ["high", "log", "low", "type"], given=["low", "high", "type"]) == "log"
    assert closest("lw", ["low"], given=["low"]) is None


def test_a_loose_likeness_is_no_suggestion_beside_a_choice_given_that_the_word_is_near() -> None:
    # `sede` beside `seed`: scheduler (0.62 like it) was suggested; the word is a copy of the key given
    keys = ["budget", "name", "scheduler", "seed", "select", "space"]
    assert closest("sede", keys, given=["name", "seed", "space"]) is None
    assert closest("sede", keys, given=["name", "space"]) == "seed"
    assert closest("shceduler", keys, given=["seed"]) == "scheduler"  # a near match not given is still named


def test_a_well_known_alias_is_the_name_it_stands_for() -> None:
    assert closest("cmd", ["command", "cwd", "env"]) == "command"
    assert closest("bayes", ["tpe", "cmaes", "bo"]) == "bo"
    assert closest("Bayesian", ["tpe", "cmaes", "bo"]) == "bo"
    assert closest("cmd", ["cwd", "env"]) == "cwd"  # the alias's name is not a choice here: the rule as before


def test_a_storage_value_gets_the_url_it_stands_for() -> None:
    import os

    from tunesmith.suggestions import storage_url_fix

    assert storage_url_fix("proj/tunesmith.db") == "(try sqlite:///proj/tunesmith.db)"
    # SQLAlchemy expands no ~, and user@host/db names a server, not a file in a folder named user@host
    assert storage_url_fix("~/proj/t.db") == f"(try sqlite:///{os.path.expanduser('~')}/proj/t.db)"
    assert storage_url_fix("me@pghost/tuning") == "(try postgresql://me@pghost/tuning)"


def test_a_url_missing_the_slashes_after_its_scheme_gets_them_back() -> None:
    """`sqlite:/nope/x.db` was answered "(try sqlite:///sqlite:/nope/x.db)": the scheme read as part of a path."""
    from tunesmith.suggestions import storage_url_fix

    assert storage_url_fix("sqlite//tunesmith.db") == "(try sqlite:///tunesmith.db)", "the colon missing"
    assert storage_url_fix("postgresql//me@pghost/tuning") == "(try postgresql://me@pghost/tuning)"
    assert storage_url_fix("sqlite:/nope/x.db") == (
        "(try sqlite:////nope/x.db for the file /nope/x.db, or sqlite:///nope/x.db for nope/x.db in this folder)")
    assert storage_url_fix("sqlite:runs.db") == "(try sqlite:///runs.db)"
    assert storage_url_fix("postgresql:me@pghost/tuning") == "(try postgresql://me@pghost/tuning)"

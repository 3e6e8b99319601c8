import pytest

from ead_tutorial import profiles


def test_tests_run_at_the_quick_profile():
    assert profiles.current_profile() == "quick"


def test_default_is_standard(monkeypatch):
    monkeypatch.delenv(profiles.ENV_VARIABLE)
    assert profiles.current_profile() == "standard"


def test_value_is_normalised(monkeypatch):
    monkeypatch.setenv(profiles.ENV_VARIABLE, " Paper ")
    assert profiles.current_profile() == "paper"


def test_invalid_profile_names_the_choices(monkeypatch):
    monkeypatch.setenv(profiles.ENV_VARIABLE, "fast")
    with pytest.raises(ValueError, match="quick, standard, paper"):
        profiles.current_profile()


def test_pick_follows_the_profile(monkeypatch):
    assert profiles.pick(quick=1, standard=2, paper=3) == 1
    assert profiles.pick(quick=1, standard=2, paper=3, profile="paper") == 3
    monkeypatch.setenv(profiles.ENV_VARIABLE, "standard")
    assert profiles.pick(quick=1, standard=2, paper=3) == 2

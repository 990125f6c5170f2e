"""Locales: the Chinese follows the seed document (the rules' names are in their records:
tests/derive/test_rules.py)."""
from __future__ import annotations

import pytest

from derive.render.locale import PROSE, get_locale


def test_languages_have_the_same_prose_keys() -> None:
    assert set(PROSE["en"]) == set(PROSE["zh"])


def test_seed_wording() -> None:
    zh = get_locale("zh")
    assert zh.say("derive", grad="X") == "推导 X"
    assert zh.say("obtain", grad="X").startswith("得到 X")
    assert zh.say("summary") == "综上所述"
    assert zh.say("differentiate").startswith("方程两边取微分得到")
    assert zh.say("from", eq="E").startswith("由 E")
    assert zh.say("problem") == "问题描述"
    assert zh.say("derivation") == "推导过程"
    assert get_locale("en").say("derive", grad="X") == "Derive X"


@pytest.mark.parametrize("lang", ["fr", "", None, "EN"])
def test_unknown_language(lang) -> None:
    with pytest.raises(ValueError, match="unknown language"):
        get_locale(lang)


def test_escape_applies_to_the_words_only() -> None:
    assert get_locale("en").say("derive", escape=str.upper, grad="$x$") == "DERIVE $x$"

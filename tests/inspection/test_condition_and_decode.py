"""Units under the disguise checks: condition paths and the decodings of literals."""

from __future__ import annotations

import base64

import pytest

from clearance.inspection.content import _condition, _decode
from clearance.inspection.content.analysis import code_on_every_path
from clearance.inspection.content.model import HEX, REGEX, TEXT, ContentRule, RulePattern

IDS = ("api1", "api2", "s1", "s2")
FACTS = _condition.ConditionFacts(
    identifiers=IDS,
    code_identifiers=frozenset({"api1", "api2"}),
    atom_shows_code=lambda atom: "pe.is_pe" in atom or "0x5a4d" in atom,
)


def _required(condition: str) -> bool:
    import plyara

    text = (
        'rule r { strings: $api1 = "a" $api2 = "b" $s1 = "c" $s2 = "d" condition: '
        + condition
        + " }"
    )
    terms = plyara.Plyara().parse_string(text)[0]["condition_terms"]
    return _condition.code_required(terms, FACTS)


@pytest.mark.parametrize(
    "condition",
    [
        "$api1 and $s1",
        "any of ($api*) and any of ($s*)",
        "uint16(0) == 0x5a4d and 2 of ($s*)",
        "pe.is_pe and ($s1 or $s2)",
        "($api1 or $api2) and not $s1",
        "all of them",
        "for any of ($api*) : ( @ < 100 )",
        "3 of them",  # two non-code strings cannot make three
    ],
)
def test_code_needed_on_every_path_keeps_the_exemption(condition: str) -> None:
    assert _required(condition)


@pytest.mark.parametrize(
    "condition",
    [
        "$s1 and not $api1",  # the code string negated
        "not any of ($api*) and $s1",
        "$api1 or any of ($s*)",  # the code string in an optional branch
        "uint16(0) == 0x5a4d and $api1 or $s2",
        "any of them",
        "2 of them",  # the two non-code strings suffice
        "#api1 == 0 and $s1",  # a count compared: true when absent
        "not pe.is_pe and $s1",
    ],
)
def test_code_string_negated_or_optional_is_no_exemption(condition: str) -> None:
    assert not _required(condition)


def test_unbalanced_condition_is_unreadable_not_exempt() -> None:
    with pytest.raises(_condition.UnreadableConditionError):
        _condition.code_required(["(", "$api1", "and", "$s1"], FACTS)
    rule = ContentRule(
        "r",
        "r.yar",
        1,
        1,
        patterns=(RulePattern("$api1", TEXT, "VirtualAlloc"),),
        condition_terms=("(", "$api1"),
    )
    assert not code_on_every_path(rule)


def test_deeply_nested_condition_is_refused_quickly() -> None:
    terms = ["("] * 5000 + ["$api1"] + [")"] * 5000
    with pytest.raises(_condition.UnreadableConditionError):
        _condition.code_required(terms, FACTS)


def test_short_code_word_inside_an_ordinary_word_is_not_code() -> None:
    rule = ContentRule(
        "r",
        "r.yar",
        1,
        1,
        patterns=(RulePattern("$a", TEXT, "console"), RulePattern("$b", TEXT, "role.so.1")),
        condition_terms=("$a",),
    )
    from clearance.inspection.content.analysis import code_pattern_ids

    assert code_pattern_ids(rule) == frozenset({"b"})


@pytest.mark.parametrize(
    ("text", "codec"),
    [("机密文件", "gbk"), ("極秘", "shift_jis"), ("СЕКРЕТНО", "cp1251"), ("СЕКРЕТНО", "koi8_r")],
)
def test_legacy_code_pages_written_as_hex_are_read(text: str, codec: str) -> None:
    assert text in _decode.byte_decodings(text.encode(codec))


def test_random_binary_does_not_become_text_in_legacy_code_pages() -> None:
    data = bytes((i * 37 + 11) % 256 for i in range(64))
    legacy = [t for t in _decode.byte_decodings(data) if any(ord(c) > 0x3000 for c in t)]
    assert legacy == []


@pytest.mark.parametrize("alignment", [0, 1, 2])
def test_base64_cut_by_hand_at_each_alignment_is_read(alignment: int) -> None:
    encoded = base64.b64encode(b"x" * alignment + b"TOP SECRET//NOFORN memo").decode()
    fragment = encoded[(0, 2, 3)[alignment] : -4]
    assert any("SECRET//NOFORN" in t for t in _decode.base64_fragment_texts(fragment))


def test_hex_digits_are_not_read_as_base64() -> None:
    assert _decode.base64_fragment_texts("4f4c45324c696e6b") == []


def test_rtf_escapes_are_read() -> None:
    escaped = "".join(f"\\'{b:02x}" for b in "Секретно".encode("cp1251"))
    assert "Секретно" in _decode.text_disguises(escaped)
    assert "绝密" in _decode.text_disguises("\\u32477?\\u23494?")


def test_one_class_per_letter_regex_is_read_as_the_word() -> None:
    assert _decode.collapse_case_classes("[Ss][Ee][Cc][Rr][Ee][Tt]") == "SECRET"
    assert _decode.collapse_case_classes("[^Ss][a-z]") == "[^Ss][a-z]"


def test_hex_and_regex_patterns_are_decoded_through_the_rule_model() -> None:
    from clearance.inspection.content.analysis import literals

    rule = ContentRule(
        "r",
        "r.yar",
        1,
        1,
        patterns=(
            RulePattern("$h", HEX, "{ d1 c5 ca d0 c5 d2 cd ce }"),
            RulePattern("$r", REGEX, "/[Tt][Oo][Pp] [Ss][Ee][Cc][Rr][Ee][Tt]/"),
        ),
    )
    texts = {lit.text for lit in literals(rule)}
    assert "СЕКРЕТНО" in texts
    assert "TOP SECRET" in texts


def test_files_that_compile_alone_but_clash_together_are_isolated() -> None:
    """The bisection behind a whole-set compile failure, on the real engine: rule files
    that each compile alone but not in one namespace (the same rule name twice)."""
    import yara_x

    from clearance.inspection.content._bisect import split_buildable

    files = [f"rule R{i} {{ condition: true }}" for i in range(12)]
    files[4] = "rule R1 { condition: false }"  # clashes with file 1
    files[9] = "rule R7 { condition: false }"  # clashes with file 7
    for text in files:
        yara_x.compile(text)  # each one alone is fine
    builds: list[int] = []

    def build(idx: list[int]) -> bool:
        builds.append(len(idx))
        compiler = yara_x.Compiler()
        try:
            for i in idx:
                compiler.add_source(files[i])
        except yara_x.CompileError:
            return False
        compiler.build()
        return True

    kept, culprits = split_buildable(list(range(12)), build)
    assert culprits == [4, 9]
    assert kept == [0, 1, 2, 3, 5, 6, 7, 8, 10, 11]
    assert build(kept)
    assert len(builds) <= 2 * (1 + 4) + 2  # about log2(n) builds per culprit

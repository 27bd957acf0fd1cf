import json

import pytest

from core.data.captions import CaptionError, Templates, parse_caption_line, read_captions, tokenize


def test_parse_humanml3d_line():
    c = parse_caption_line("a man kicks something with his left leg.#a/DET man/NOUN kick/VERB#0.0#0.0")
    assert c.text == "a man kicks something with his left leg." and c.whole_clip
    assert c.tokens[:2] == ("a/DET", "man/NOUN")
    sub = parse_caption_line("a person jumps#a/DET person/NOUN jump/VERB#1.5#4.0")
    assert (sub.start, sub.end, sub.whole_clip) == (1.5, 4.0, False)
    assert parse_caption_line(c.to_line()) == c


@pytest.mark.parametrize("line,match", [
    ("a caption without any hash", "no '#'"),
    ("#tok/NOUN#0#0", "empty"),
    ("walks#walk/VERB#x#1", "numbers"),
    ("walks#walk/VERB#3#1", "invalid time range"),
    ("walks#walk/VERB#1", "found 3"),
])
def test_bad_lines_name_file_and_line(line, match):
    with pytest.raises(CaptionError, match=match) as err:
        parse_caption_line(line, "texts/000001.txt", 7)
    assert "texts/000001.txt, line 7" in str(err.value)


def test_read_captions_skips_bad_lines(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("good one#good/ADJ#0#0\nno hash here\n\nanother#x/NOUN#0.0#0.0\n")
    caps, problems = read_captions(p)
    assert [c.text for c in caps] == ["good one", "another"]
    assert len(problems) == 1 and "line 2" in problems[0] and str(p) in problems[0]
    (tmp_path / "b.txt").write_bytes(b"\xff\xfe bad")
    assert "not UTF-8" in read_captions(tmp_path / "b.txt")[1][0]


def test_templates_give_distinct_deterministic_paraphrases():
    t = Templates.from_dict({"templates": ["a person {content} {style}", "someone {content} {style}"],
                             "phrases": {"content": {"walk": ["walks", "is walking"]},
                                         "style": {"happy": ["happily", "cheerfully"], "normal": [""]}},
                             "paraphrases": 3})
    a = t.captions({"content": "walk", "style": "happy"}, "clip_1")
    assert len(a) == 3 and len({c.text for c in a}) == 3
    assert a == t.captions({"content": "walk", "style": "happy"}, "clip_1")
    assert all(c.text[0].isupper() and "  " not in c.text for c in a)
    # unknown values are used as written, dashes as spaces; empty phrases leave no gap
    b = t.captions({"content": "wave-right-hand", "style": "normal"}, "clip_2")
    assert {c.text for c in b} == {"A person wave right hand", "Someone wave right hand"}
    with pytest.raises(CaptionError, match="style"):
        t.captions({"content": "walk"}, "clip_3")


def test_template_file_errors(tmp_path):
    bad = tmp_path / "t.json"
    bad.write_text("{not json")
    with pytest.raises(CaptionError, match="not valid JSON"):
        Templates.load(bad)
    bad.write_text(json.dumps({"templates": []}))
    with pytest.raises(CaptionError, match="non-empty list"):
        Templates.load(bad)
    with pytest.raises(CaptionError, match="not found"):
        Templates.load(tmp_path / "missing.json")


def test_bundled_bandai_namco_templates_cover_every_label():
    from core.data.bandai_namco import TEMPLATES

    t = Templates.load(TEMPLATES)
    contents = ["walk", "run", "dash", "walk-back", "walk-left", "walk-right", "bow", "bye", "guide", "byebye",
                "respond", "call", "punch", "kick", "slash", "dance-long", "dance-short", "walk-turn-left",
                "walk-turn-right", "wave-both-hands", "wave-left-hand", "wave-right-hand",
                "raise-up-both-hands", "raise-up-left-hand", "raise-up-right-hand"]
    styles = ["normal", "happy", "sad", "angry", "proud", "not-confident", "masculinity", "feminine", "childish",
              "old", "tired", "active", "musical", "giant", "chimpira", "elderly", "exhausted", "masculine", "youthful"]
    assert set(contents) <= set(t.phrases["content"]) and set(styles) <= set(t.phrases["style"])
    caps = t.captions({"content": "wave-right-hand", "style": "happy"}, "x")
    assert all("right hand" in c.text or "right arm" in c.text for c in caps)


def test_tokenize_tags():
    assert tokenize("A person walks happily") == ("a/DET", "person/NOUN", "walks/VERB", "happily/ADV")

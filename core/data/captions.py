"""HumanML3D caption lines (``caption#tokens#start#end``) and label-to-sentence templates."""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

MAX_SECONDS = 86_400.0     # caption times beyond a day are corrupt, not long clips


class CaptionError(ValueError):
    """A caption or template problem, with the file (and line) it came from."""


@dataclass(frozen=True)
class Caption:
    text: str
    tokens: tuple[str, ...]     # "word/POS"
    start: float = 0.0          # seconds; start == end == 0 means the whole clip
    end: float = 0.0

    @property
    def whole_clip(self) -> bool:
        return self.start == 0.0 and self.end == 0.0

    def to_line(self) -> str:
        return f"{_one_field(self.text)}#{_one_field(' '.join(self.tokens))}#{self.start:g}#{self.end:g}"


def _one_field(text: str) -> str:
    # split() also breaks at \r, \x85, \u2028, ...: any of them would end the line early
    # when read back with splitlines(); '#' would start a field and a NUL voids the line
    return " ".join(text.replace("#", " ").replace("\x00", " ").split())


def parse_caption_line(line: str, source: str = "<text>", lineno: int = 0) -> Caption:
    """Parse one ``caption#tokens#start#end`` line; raise CaptionError naming file and line."""
    where = f"{source}, line {lineno}" if lineno else source
    line = line.rstrip("\r\n")
    if "\x00" in line:
        raise CaptionError(f"{where}: the line contains a NUL byte")
    parts = line.split("#")
    if len(parts) < 2:
        raise CaptionError(f"{where}: expected 'caption#tokens#start#end', found no '#' in {line[:60]!r}")
    text = parts[0].strip()
    if not text:
        raise CaptionError(f"{where}: the caption text is empty")
    tokens = tuple(t for t in parts[1].split(" ") if t)
    start = end = 0.0
    if len(parts) >= 4:
        try:
            start = float(parts[2]) if parts[2].strip() else 0.0
            end = float(parts[3]) if parts[3].strip() else 0.0
        except ValueError:
            raise CaptionError(f"{where}: start/end must be numbers of seconds, got {parts[2]!r} and {parts[3]!r}") from None
        # huge or infinite times would overflow when turned into frame numbers
        if not (0 <= start <= MAX_SECONDS and 0 <= end <= MAX_SECONDS) or (end and end < start):
            raise CaptionError(f"{where}: invalid time range {start:g}..{end:g} s "
                               f"(times are 0..{MAX_SECONDS:g} s, end not before start)")
    elif len(parts) == 3:
        raise CaptionError(f"{where}: expected 4 '#'-separated fields, found 3")
    return Caption(text, tokens, start, end)


def read_captions(path: str | Path) -> tuple[list[Caption], list[str]]:
    """Read a texts/<id>.txt file. Returns (captions, problems); bad lines are skipped."""
    path = Path(path)
    captions, problems = [], []
    try:
        raw = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        return [], [f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]
    for i, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            captions.append(parse_caption_line(line, str(path), i))
        except CaptionError as exc:
            problems.append(str(exc))
    if not captions and not problems:
        problems.append(f"{path}: no captions")
    return captions, problems


# a tiny part-of-speech guess, so generated token fields look like HumanML3D's
_DET = {"a", "an", "the", "this", "that", "some", "both"}
_ADP = {"in", "on", "at", "with", "to", "from", "of", "by", "for", "up", "down", "forward",
        "backward", "back", "around", "over", "while", "like", "into", "toward", "towards"}
_PRON = {"he", "she", "it", "they", "someone", "somebody", "person", "his", "her", "their", "its"}
_AUX = {"is", "are", "was", "be", "being", "been"}
_NUM = {"one", "two", "three", "four", "five", "once", "twice"}


def _pos(word: str) -> str:
    if word in _DET:
        return "DET"
    if word in _ADP:
        return "ADP"
    if word in _AUX:
        return "AUX"
    if word in _NUM or word.isdigit():
        return "NUM"
    if word in _PRON:
        return "PRON" if word != "person" else "NOUN"
    if word.endswith("ly"):
        return "ADV"
    if word.endswith(("s", "ing", "ed")) and len(word) > 4:
        return "VERB"
    return "NOUN"


def tokenize(text: str) -> tuple[str, ...]:
    words = re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", text.lower())
    return tuple(f"{w}/{_pos(w)}" for w in words)


@dataclass
class Templates:
    """Label-to-sentence templates.

    JSON form::

        {"templates": ["a person {content} {style}.", ...],
         "phrases": {"content": {"walk": ["walks forward", ...]},
                     "style": {"happy": ["happily", ...]}},
         "paraphrases": 3}

    Each ``{key}`` slot takes one phrase of that label's value; values missing from
    ``phrases`` are used as written, with dashes turned into spaces.
    """

    templates: list[str]
    phrases: dict[str, dict[str, list[str]]]
    paraphrases: int = 3
    source: str = "<templates>"

    @classmethod
    def load(cls, path: str | Path) -> "Templates":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CaptionError(f"{path}: template file not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CaptionError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: dict, source: str = "<templates>") -> "Templates":
        if not isinstance(data, dict) or not isinstance(data.get("templates"), list) or not data["templates"]:
            raise CaptionError(f"{source}: needs a non-empty list 'templates'")
        if not all(isinstance(t, str) and t.strip() for t in data["templates"]):
            raise CaptionError(f"{source}: every template must be a non-empty string")
        phrases = data.get("phrases", {})
        if not isinstance(phrases, dict) or not all(
                isinstance(v, dict) and all(isinstance(p, list) and p and all(isinstance(s, str) for s in p)
                                            for p in v.values()) for v in phrases.values()):
            raise CaptionError(f"{source}: 'phrases' must map label -> value -> non-empty list of strings")
        n = data.get("paraphrases", 3)
        if not isinstance(n, int) or n < 1:
            raise CaptionError(f"{source}: 'paraphrases' must be a positive integer")
        return cls(list(data["templates"]), phrases, n, source)

    def slots(self) -> set[str]:
        return {m for t in self.templates for m in re.findall(r"\{(\w+)\}", t)}

    def captions(self, labels: dict[str, str], key: str) -> list[Caption]:
        """Distinct sentences for one clip, chosen deterministically from ``key``."""
        missing = self.slots() - labels.keys()
        if missing:
            raise CaptionError(f"{self.source}: clip {key!r} has no label(s) {sorted(missing)} used by the templates")
        seed = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "little")
        options = []
        for t_i, template in enumerate(self.templates):
            slots = re.findall(r"\{(\w+)\}", template)
            choices = [self.phrases.get(s, {}).get(labels[s]) or [labels[s].replace("-", " ")] for s in slots]
            combos = 1
            for c in choices:
                combos *= len(c)
            for k in range(combos):
                picked, rest = {}, k
                for s, c in zip(slots, choices):
                    picked[s] = c[rest % len(c)]
                    rest //= len(c)
                options.append(template.format(**picked))
        random.Random(seed).shuffle(options)
        seen, out = set(), []
        for option in options:
            sentence = " ".join(option.split())
            sentence = sentence[:1].upper() + sentence[1:]
            if sentence and sentence not in seen:
                seen.add(sentence)
                out.append(Caption(sentence, tokenize(sentence)))
            if len(out) == self.paraphrases:
                break
        return out

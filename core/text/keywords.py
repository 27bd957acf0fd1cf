"""Offline keyword phrases for a prompt: a small rule-based chunker over word lists, standing in
for the 11 GPT-written keyword phrases per caption of the original method."""

from __future__ import annotations

import re

from core.text.cleaning import clean_text

N_KEYWORDS = 11          # keyword slots per prompt (the original used 11 GPT-4 keywords)

_BODY = {  # surface form -> itself; plural and singular both listed
    w for w in (
        "hand hands arm arms leg legs foot feet head torso knee knees elbow elbows shoulder "
        "shoulders hip hips wrist wrists ankle ankles waist chest neck finger fingers toe toes "
        "heel heels thigh thighs chin face body trunk spine palm palms fist fists forearm "
        "forearms shin shins butt pelvis"
    ).split()
}
_BODY_PREFIX = {"upper", "lower"}          # "upper body", "lower back"
_SIDES = {"left", "right", "both", "each", "either", "other", "one", "two"}
_DETS = {"the", "a", "an", "his", "her", "their", "its", "my", "your", "one's", "them"}
_DIRECTIONS = {
    "forward", "forwards", "backward", "backwards", "back", "up", "down", "around", "left",
    "right", "sideways", "clockwise", "counterclockwise", "anticlockwise", "away", "over",
    "across", "out", "off", "diagonally", "straight", "upward", "upwards", "downward",
    "downwards", "together", "apart", "inward", "outward",
}
_OBJECTS = {
    "ball", "box", "chair", "stairs", "stair", "steps", "table", "door", "rope", "object",
    "something", "cup", "bottle", "bag", "dumbbell", "weight", "weights", "bar", "rail",
    "handrail", "wall", "floor", "ground", "bench", "stool", "bed", "sofa", "couch", "window",
    "phone", "hat", "umbrella", "sword", "bat", "racket", "guitar", "violin", "drum", "drums",
    "item", "obstacle", "circle", "line",
}
_STYLE_WORDS = {
    "fast", "slow", "quick", "hard", "gently", "happy", "sad", "angry", "drunk", "tired",
    "excited", "nervous", "confident", "energetic", "cautious", "careful", "elderly", "old",
    "injured", "zombie", "robot", "sneaky", "lazy", "proud", "scared", "afraid", "graceful",
    "powerful", "aggressive", "casual", "calm", "wildly", "hurriedly",
}
_NOT_ADVERBS = {
    "only", "family", "fly", "apply", "reply", "rally", "belly", "jelly", "holy", "ugly",
    "lonely", "friendly", "silly", "early", "likely", "daily", "july", "italy", "lily", "bully",
    "ally", "supply", "rely", "comply", "multiply", "wobbly", "curly", "hilly", "elderly",
}
_VERB_LEMMAS = (
    "walk run jog jump hop skip kick punch wave raise lift lower swing throw catch pick put place "
    "bend squat sit stand kneel crawl climb turn spin rotate twist step stumble fall lean stretch "
    "reach clap dance shake nod bow push pull grab hold carry drag touch rub scratch wipe wash "
    "point stomp march tiptoe sneak shuffle stroll sprint dash dodge duck crouch lunge roll flip "
    "cartwheel balance bounce flap swim salute lie rise get move extend cross fold open close "
    "shrug tap stamp slide skate fight block strike slap hug drink eat play perform do rock sway "
    "wobble limp trip pace tilt look glance stoop hit swat jab kneel knock bring sweep stir "
    "paddle row lay leap pivot bob circle wiggle wriggle flex pump spread brush toss bat juggle "
    "hunch slouch go come start stop begin continue keep take make use cover rest"
).split()
_IRREGULAR = {
    "ran": "run", "sat": "sit", "stood": "stand", "threw": "throw", "thrown": "throw",
    "fell": "fall", "fallen": "fall", "swung": "swing", "knelt": "kneel", "lay": "lie",
    "lying": "lie", "lain": "lie", "held": "hold", "caught": "catch", "got": "get",
    "rose": "rise", "risen": "rise", "took": "take", "taken": "take", "went": "go",
    "gone": "go", "did": "do", "done": "do", "does": "do", "came": "come", "made": "make",
    "kept": "keep", "began": "begin", "brought": "bring", "struck": "strike", "swam": "swim",
    "leapt": "leap", "spun": "spin", "shook": "shake", "hit": "hit", "put": "put",
}
# verbs that only set up another verb ("starts to walk") are not keywords on their own
_LIGHT_VERBS = {"go", "come", "start", "stop", "begin", "continue", "keep", "take", "make", "use",
                "get", "do"}
_CLAUSE_BREAKS = {"and", "then", "while", "before", "after", "but", "or", "as", "to", "until",
                  "when", "again"}


def _inflections(lemma: str) -> set[str]:
    """Regular English inflections of a verb lemma (3rd person, -ing, -ed)."""
    forms = {lemma}
    if lemma.endswith(("s", "sh", "ch", "x", "z", "o")):
        forms.add(lemma + "es")
    elif lemma.endswith("y") and lemma[-2:-1] not in "aeiou":
        forms |= {lemma[:-1] + "ies", lemma[:-1] + "ied"}
    else:
        forms.add(lemma + "s")
    if lemma.endswith("ie"):
        forms.add(lemma[:-2] + "ying")
    elif lemma.endswith("e") and lemma not in ("be", "see"):
        forms |= {lemma[:-1] + "ing", lemma + "d"}
    else:
        forms |= {lemma + "ing", lemma + "ed"}
    # short CVC verbs double the final consonant (step -> stepping)
    if (len(lemma) >= 3 and lemma[-1] not in "aeiouwxy" and lemma[-2] in "aeiou"
            and lemma[-3] not in "aeiou"):
        forms |= {lemma + lemma[-1] + "ing", lemma + lemma[-1] + "ed"}
    return forms


_VERBS: dict[str, str] = {}
for _lem in _VERB_LEMMAS:
    for _f in _inflections(_lem):
        _VERBS.setdefault(_f, _lem)
_VERBS.update(_IRREGULAR)
for _w in ("back", "left", "right", "one", "two", "face", "hands", "arms", "steps", "circle",
           "rest", "cross", "block"):
    # nouns/directions first: a verb reading is only used when not a body part or side
    _VERBS.pop(_w, None)

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|[.,;:!?]")


def _is_adverb(w: str) -> bool:
    return len(w) > 4 and w.endswith("ly") and w not in _NOT_ADVERBS


def keywords(prompt: str, n: int = N_KEYWORDS) -> list[str]:
    """Keyword phrases for a prompt, derived offline by deterministic rules; exactly ``n`` items.

    The original method conditions on 11 GPT-4-written body-part keywords per
    motion; no language model is available here, so a small rule-based chunker
    over word lists stands in:

    1. lower-case and split into words; punctuation, "and", "then", "while", ...
       end a clause (a verb only attaches to words in its own clause);
    2. body-part phrases: an optional side word (left/right/both/...) plus a
       body-part noun ("right hand", "both arms", "head", "upper body"); with the
       nearest preceding action verb of the clause the full span is also kept
       ("waves the right hand");
    3. verb + direction ("walks forward", "turns left") and verb + object
       ("kicks a ball", "picks up the box");
    4. action verbs on their own ("waves"), in their written form;
    5. style words: "-ly" adverbs and a short list ("happily", "fast", "drunk").

    Order: verb+body-part, verb+direction/object, body parts, style, bare verbs
    (most specific first); duplicates removed; truncated to ``n`` and padded with
    ``""``, which the text encoders map to a zero vector. When nothing matches
    (e.g. a non-English prompt) the first 8 words of the prompt are the one keyword.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    text = clean_text(prompt)
    words = _WORD.findall(text.lower())
    verb_body, verb_other, body, style, verbs = [], [], [], [], []
    last_verb = None           # index of the last action verb in the current clause
    i = 0
    while i < len(words):
        w = words[i]
        if w in ".,;:!?" or w in _CLAUSE_BREAKS:
            last_verb = None if w != "to" else last_verb
            if w == "to" and last_verb is not None and _VERBS.get(words[last_verb]) in _LIGHT_VERBS:
                last_verb = None
            i += 1
            continue
        # body-part phrase: [side] [upper/lower] part, "back" only after a determiner/prefix
        j = i
        while j < len(words) and (words[j] in _SIDES or words[j] in _BODY_PREFIX):
            j += 1
        part_ok = j < len(words) and (
            words[j] in _BODY
            or (words[j] == "back" and j > 0 and (words[j - 1] in _DETS or words[j - 1] in _BODY_PREFIX)))
        if part_ok:
            phrase = " ".join(words[i:j + 1])
            body.append(phrase)
            if last_verb is not None and i - last_verb <= 4:
                verb_body.append(" ".join(words[last_verb:j + 1]))
            i = j + 1
            continue
        if w in _VERBS:
            last_verb = i
            if _VERBS[w] not in _LIGHT_VERBS:
                verbs.append(w)
            # verb + direction words / particle + object
            k = i + 1
            while k < len(words) and words[k] in _DIRECTIONS and not (
                    words[k] in _SIDES and k + 1 < len(words) and words[k + 1] in _BODY):
                k += 1
            if k > i + 1 and _VERBS[w] not in _LIGHT_VERBS:
                verb_other.append(" ".join(words[i:k]))
            m = k
            while m < len(words) and m - k < 3 and (words[m] in _DETS or words[m] in ("in", "on", "at")):
                m += 1
            if m < len(words) and words[m] in _OBJECTS and _VERBS[w] not in _LIGHT_VERBS:
                verb_other.append(" ".join(words[i:m + 1]))
            i += 1
            continue
        if _is_adverb(w) or w in _STYLE_WORDS:
            style.append(w)
        i += 1
    out: list[str] = []
    for p in verb_body + verb_other + body + style + verbs:
        if p and p not in out:
            out.append(p)
    if not out and text:
        # nothing matched (another language, unusual wording): keep the prompt's start
        out.append(" ".join(text.lower().split()[:8]))
    out = out[:n]
    return out + [""] * (n - len(out))

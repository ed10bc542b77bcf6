#!/usr/bin/env python3
"""Regenerate tuitune's bundled assets, deterministically (seeded; no network, no model).

    python scripts/make_assets.py            # writes assets/quickstart/ and assets/general/
    python scripts/make_assets.py --out DIR  # somewhere else (tests compare the bytes)

The quickstart task is ``json_extract``: read a short blurb about a person and answer with one
strict JSON object, keys in a fixed order and with fixed types. A small instruct model knows
roughly what JSON is but does not hold the exact schema (it adds prose or code fences,
renames keys, quotes numbers); a short LoRA run teaches the format. That is the kind of
behaviour/format change fine-tuning is for (the seed guide's rung 01), not new knowledge.

The eval set is held out for real: its names, cities, jobs and sentence templates are drawn
from pools disjoint from the training and preference sets.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

SEED = 20261124
N_TRAIN = 480
N_EVAL = 60
N_PREFERENCE = 240

SYSTEM_PROMPT = (
    "Extract the person described in the text. Reply with one JSON object and nothing else, "
    'with exactly these keys in this order: "name" (string), "age" (integer), '
    '"city" (string, where they live now), "job" (string, lowercase).'
)

# Disjoint pools: training/preference examples never mention an eval entity or template.
TRAIN_FIRST = [
    "Ada",
    "Alan",
    "Amara",
    "Anton",
    "Aria",
    "Bela",
    "Boris",
    "Carla",
    "Cyrus",
    "Dalia",
    "Dmitri",
    "Elena",
    "Emil",
    "Farah",
    "Felix",
    "Greta",
    "Hana",
    "Hugo",
    "Ines",
    "Ivan",
    "Jana",
    "Jonas",
    "Kira",
    "Lars",
    "Lena",
    "Luca",
    "Maya",
    "Milo",
    "Nadia",
    "Nico",
    "Olga",
    "Omar",
    "Petra",
    "Pavel",
    "Rosa",
    "Rafael",
    "Sara",
    "Stefan",
    "Tara",
    "Tomas",
    "Una",
    "Viktor",
    "Vera",
    "Yusuf",
    "Zara",
    "Zoltan",
]
TRAIN_LAST = [
    "Adams",
    "Berg",
    "Costa",
    "Dahl",
    "Ekman",
    "Ferreira",
    "Gallo",
    "Horvat",
    "Ibsen",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Novak",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Santos",
    "Tanaka",
    "Ueda",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zimmer",
    "Brandt",
    "Castillo",
    "Duarte",
    "Eriksen",
    "Fischer",
    "Hoffman",
    "Kovac",
    "Laine",
    "Meyer",
    "Nilsen",
    "Ortiz",
    "Popescu",
    "Richter",
    "Silva",
]
TRAIN_CITY = [
    "Lisbon",
    "Porto",
    "Oslo",
    "Bergen",
    "Madrid",
    "Seville",
    "Prague",
    "Brno",
    "Vienna",
    "Graz",
    "Dublin",
    "Cork",
    "Lyon",
    "Nantes",
    "Turin",
    "Naples",
    "Krakow",
    "Gdansk",
    "Leeds",
    "Bristol",
    "Toronto",
    "Halifax",
    "Denver",
    "Austin",
    "Osaka",
    "Sapporo",
    "Lagos",
    "Nairobi",
    "Quito",
    "Lima",
    "Perth",
    "Hobart",
    "Tallinn",
    "Riga",
    "Zagreb",
    "Split",
]
TRAIN_JOB = [
    "nurse",
    "teacher",
    "plumber",
    "architect",
    "baker",
    "pilot",
    "chemist",
    "librarian",
    "carpenter",
    "dentist",
    "electrician",
    "journalist",
    "lawyer",
    "mechanic",
    "pharmacist",
    "photographer",
    "translator",
    "veterinarian",
    "welder",
    "accountant",
    "chef",
    "gardener",
    "surveyor",
    "tailor",
    "software developer",
    "data analyst",
]

EVAL_FIRST = [
    "Beatriz",
    "Cosmin",
    "Delphine",
    "Eamon",
    "Fenna",
    "Gideon",
    "Halla",
    "Imre",
    "Jorun",
    "Kasimir",
    "Linnea",
    "Mateo",
    "Noor",
    "Orla",
    "Piet",
    "Ragnar",
    "Solveig",
    "Teodor",
]
EVAL_LAST = [
    "Aalto",
    "Bianchi",
    "Cardoso",
    "Dvorak",
    "Esposito",
    "Fontaine",
    "Gruber",
    "Haugen",
    "Ivanova",
    "Janssen",
    "Keller",
    "Lombardi",
    "Mendes",
    "Nakamura",
]
EVAL_CITY = [
    "Ghent",
    "Utrecht",
    "Aarhus",
    "Malmo",
    "Bologna",
    "Valencia",
    "Leipzig",
    "Basel",
    "Bilbao",
    "Tampere",
    "Ljubljana",
    "Calgary",
]
EVAL_JOB = [
    "physiotherapist",
    "optician",
    "locksmith",
    "economist",
    "florist",
    "paramedic",
    "geologist",
    "sculptor",
    "cartographer",
    "zookeeper",
]

# {n} name, {a} age, {c} city, {j} job, {o} another city (a distractor: not where they live).
TRAIN_TEMPLATES = [
    "{n} is a {a}-year-old {j} who lives in {c}.",
    "Meet {n}, {a}, a {j} based in {c}.",
    "{n} ({a}) works as a {j} in {c}.",
    "Born in {o}, {n} now lives in {c} and works as a {j}. {n} is {a}.",
    "After years in {o}, {n} moved to {c}, where the {a}-year-old works as a {j}.",
    "Our new neighbour is {n}. {n} is {a}, lives in {c} and is a {j} by trade.",
    "{n}, aged {a}, has been a {j} in {c} for a decade.",
    "Profile: {n}. Occupation: {j}. Home: {c}. Age: {a}.",
    "The {j} {n} celebrated turning {a} last week at home in {c}.",
    "{n} grew up in {o} but today lives in {c}. At {a}, {n} works as a {j}.",
    "In {c}, {a}-year-old {n} runs a busy practice as a {j}.",
    "Local {j} {n} ({a}) from {c} won the city prize this year.",
]
EVAL_TEMPLATES = [
    "{n}, a {j} aged {a}, calls {c} home.",
    "Having left {o} long ago, {n} ({a}) is now a {j} living in {c}.",
    "Name: {n} / age {a} / works as {j} / resides in {c}.",
    "Everyone in {c} knows {n}, the {a}-year-old {j}.",
    "{n} spent a year in {o}, then settled in {c}; the {j} is {a} now.",
]


def _person(
    rng: random.Random, first: list[str], last: list[str], cities: list[str], jobs: list[str]
):
    name = f"{rng.choice(first)} {rng.choice(last)}"
    city, other = rng.sample(cities, 2)
    return {"name": name, "age": rng.randint(19, 78), "city": city, "job": rng.choice(jobs)}, other


def _blurb(template: str, rec: dict, other: str) -> str:
    text = template.format(n=rec["name"], a=rec["age"], c=rec["city"], j=rec["job"], o=other)
    return re.sub(r"\b([Aa]) (?=[aeiou])", r"\1n ", text)  # "a optician" -> "an optician"


def answer(rec: dict) -> str:
    """The one correct reply: compact-spaced JSON, keys in schema order."""
    return json.dumps(rec, ensure_ascii=False)


def _prompt_messages(text: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}]


def make_train(rng: random.Random) -> list[dict]:
    rows, seen = [], set()
    while len(rows) < N_TRAIN:
        rec, other = _person(rng, TRAIN_FIRST, TRAIN_LAST, TRAIN_CITY, TRAIN_JOB)
        text = _blurb(rng.choice(TRAIN_TEMPLATES), rec, other)
        if text in seen:
            continue
        seen.add(text)
        msgs = [*_prompt_messages(text), {"role": "assistant", "content": answer(rec)}]
        rows.append({"messages": msgs})
    return rows


def make_eval(rng: random.Random) -> list[dict]:
    rows, seen = [], set()
    while len(rows) < N_EVAL:
        rec, other = _person(rng, EVAL_FIRST, EVAL_LAST, EVAL_CITY, EVAL_JOB)
        text = _blurb(EVAL_TEMPLATES[len(rows) % len(EVAL_TEMPLATES)], rec, other)
        if text in seen:
            continue
        seen.add(text)
        rows.append({"messages": _prompt_messages(text), "reference": rec})
    return rows


def _rejected(rng: random.Random, rec: dict, other: str) -> str:
    """A plausible failure: what an untuned small model tends to write instead."""
    kind = rng.randrange(7)
    if kind == 0:
        return f"Here is the extracted information:\n\n{answer(rec)}"
    if kind == 1:
        return f"```json\n{json.dumps(rec, indent=2)}\n```"
    if kind == 2:
        return json.dumps(
            {
                "full_name": rec["name"],
                "age": rec["age"],
                "location": rec["city"],
                "occupation": rec["job"],
            }
        )
    if kind == 3:
        return json.dumps({**rec, "age": str(rec["age"])})
    if kind == 4:
        return json.dumps(
            {"name": rec["name"], "city": rec["city"], "job": rec["job"], "age": rec["age"]}
        )
    if kind == 5:
        return json.dumps({**rec, "city": other})
    return f"{rec['name']} is {rec['age']} years old, lives in {rec['city']} and works as a {rec['job']}."


def make_preference(rng: random.Random, exclude: set[str]) -> list[dict]:
    rows, seen = [], set(exclude)
    while len(rows) < N_PREFERENCE:
        rec, other = _person(rng, TRAIN_FIRST, TRAIN_LAST, TRAIN_CITY, TRAIN_JOB)
        text = _blurb(rng.choice(TRAIN_TEMPLATES), rec, other)
        if text in seen:
            continue
        seen.add(text)
        rows.append(
            {
                "prompt": _prompt_messages(text),
                "chosen": [{"role": "assistant", "content": answer(rec)}],
                "rejected": [{"role": "assistant", "content": _rejected(rng, rec, other)}],
            }
        )
    return rows


# The forgetting check: questions a 135M instruct model mostly answers, with a short reference
# that a correct answer contains, plus plain paragraphs for perplexity.
GENERAL_QA = [
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is the capital of Italy?", "Rome"),
    ("What is the largest planet in our solar system?", "Jupiter"),
    ("Which planet is known as the Red Planet?", "Mars"),
    ("What is the chemical symbol for water?", "H2O"),
    ("How many days are there in a week?", "seven"),
    ("How many legs does a spider have?", "eight"),
    ("What colour is the sky on a clear day?", "blue"),
    ("What gas do plants absorb from the air?", "carbon dioxide"),
    ("What is the boiling point of water in degrees Celsius?", "100"),
    ("Who wrote Romeo and Juliet?", "Shakespeare"),
    ("What is the opposite of hot?", "cold"),
    ("What do bees make?", "honey"),
    ("Which ocean is the largest?", "Pacific"),
    ("What is the freezing point of water in degrees Celsius?", "0"),
    ("What is 2 plus 2?", "4"),
    ("What is the tallest animal in the world?", "giraffe"),
    ("What is the main language spoken in Spain?", "Spanish"),
    ("Which star is at the centre of our solar system?", "Sun"),
    ("How many continents are there?", "seven"),
    ("What is frozen water called?", "ice"),
    ("What instrument has black and white keys?", "piano"),
    ("What do you call a baby cat?", "kitten"),
]
GENERAL_TEXT = [
    "The water cycle describes how water moves between the land, the oceans and the air. "
    "Heat from the sun evaporates water from seas and lakes; the vapour rises, cools and "
    "condenses into clouds, and it returns to the ground as rain or snow.",
    "A library lends books, films and music to the people of a town. Many libraries also "
    "offer quiet rooms for study, free internet access and reading groups for children.",
    "Bread is made from flour, water, salt and yeast. The yeast feeds on sugars in the dough "
    "and releases carbon dioxide, which makes the dough rise before it is baked in a hot oven.",
    "Regular exercise strengthens the heart and lungs, improves sleep and lifts the mood. "
    "Even a brisk walk of thirty minutes a day brings measurable benefits to most adults.",
    "The first computers filled whole rooms and used vacuum tubes. Transistors, and later "
    "integrated circuits, made machines smaller, cheaper and far more reliable.",
    "Bees carry pollen from flower to flower as they collect nectar. This pollination helps "
    "many fruits and vegetables grow, which is why bees matter so much to farmers.",
    "A good night's sleep lets the body repair itself and helps the brain store memories. "
    "Most adults need between seven and nine hours of sleep each night.",
    "Trains are an efficient way to travel between cities. They carry many passengers at once "
    "and produce less pollution per person than cars or planes.",
]


def make_general() -> list[dict]:
    rows: list[dict] = [
        {"messages": [{"role": "user", "content": q}], "reference": a} for q, a in GENERAL_QA
    ]
    rows += [{"text": t} for t in GENERAL_TEXT]
    return rows


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def build(out: Path) -> dict[str, int]:
    """Write every asset under ``out``; return row counts by relative path."""
    rng = random.Random(SEED)
    train = make_train(rng)
    evals = make_eval(random.Random(SEED + 1))
    train_texts = {r["messages"][1]["content"] for r in train}
    pref = make_preference(random.Random(SEED + 2), train_texts)
    files = {
        "quickstart/train.jsonl": train,
        "quickstart/eval.jsonl": evals,
        "quickstart/preference.jsonl": pref,
        "general/general.jsonl": make_general(),
    }
    for rel, rows in files.items():
        _write_jsonl(out / rel, rows)
    return {rel: len(rows) for rel, rows in files.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parent.parent / "assets"
    p.add_argument("--out", type=Path, default=default, help="assets directory (default: repo)")
    args = p.parse_args(argv)
    for rel, n in build(args.out).items():
        print(f"{args.out / rel}: {n} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())

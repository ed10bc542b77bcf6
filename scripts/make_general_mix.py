"""Write ``assets/general/mix.jsonl``: general chat rows to mix into training (replay).

Mixing a share of general instruction data into a narrow fine-tune is the usual way to keep
a model from forgetting what it could do (replay / mixture training). This set is written by
hand from small fact tables and short explanations, deterministically (no model, no network),
and is kept disjoint from ``assets/general/general.jsonl``, the forgetting check's questions,
so the check is never trained on. Run:

    python scripts/make_general_mix.py          # writes assets/general/mix.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

SEED = 7

CAPITALS = [
    ("Germany", "Berlin"), ("Spain", "Madrid"), ("Portugal", "Lisbon"), ("Canada", "Ottawa"),
    ("Australia", "Canberra"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Brazil", "Brasília"),
    ("Argentina", "Buenos Aires"), ("Mexico", "Mexico City"), ("India", "New Delhi"),
    ("China", "Beijing"), ("Russia", "Moscow"), ("Greece", "Athens"), ("Norway", "Oslo"),
    ("Sweden", "Stockholm"), ("Finland", "Helsinki"), ("Poland", "Warsaw"), ("Ireland", "Dublin"),
    ("Austria", "Vienna"), ("Peru", "Lima"), ("Chile", "Santiago"), ("Turkey", "Ankara"),
    ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"), ("South Korea", "Seoul"),
    ("the Netherlands", "Amsterdam"), ("Belgium", "Brussels"), ("Denmark", "Copenhagen"),
    ("Hungary", "Budapest"),
]  # fmt: skip
BABIES = [
    ("dog", "puppy"), ("cow", "calf"), ("horse", "foal"), ("sheep", "lamb"), ("goat", "kid"),
    ("duck", "duckling"), ("frog", "tadpole"), ("kangaroo", "joey"), ("bear", "cub"),
    ("goose", "gosling"), ("swan", "cygnet"), ("owl", "owlet"), ("deer", "fawn"), ("pig", "piglet"),
]  # fmt: skip
OPPOSITES = [
    ("big", "small"), ("fast", "slow"), ("up", "down"), ("light", "dark"), ("happy", "sad"),
    ("open", "closed"), ("early", "late"), ("wet", "dry"), ("young", "old"), ("loud", "quiet"),
    ("full", "empty"), ("strong", "weak"), ("rich", "poor"), ("push", "pull"),
]  # fmt: skip
LANGUAGES = [
    ("Germany", "German"), ("Portugal", "Portuguese"), ("Brazil", "Portuguese"),
    ("Japan", "Japanese"), ("Italy", "Italian"), ("Greece", "Greek"), ("the Netherlands", "Dutch"),
    ("Poland", "Polish"), ("Sweden", "Swedish"), ("Turkey", "Turkish"), ("Russia", "Russian"),
    ("Egypt", "Arabic"), ("France", "French"),
]  # fmt: skip
COUNTS = [
    ("How many hours are there in a day?", "There are 24 hours in a day."),
    ("How many minutes are there in an hour?", "There are 60 minutes in an hour."),
    ("How many seconds are there in a minute?", "There are 60 seconds in a minute."),
    ("How many months are there in a year?", "There are twelve months in a year."),
    ("How many days are there in a leap year?", "A leap year has 366 days."),
    ("How many sides does a triangle have?", "A triangle has three sides."),
    ("How many sides does a hexagon have?", "A hexagon has six sides."),
    ("How many sides does an octagon have?", "An octagon has eight sides."),
    ("How many legs does an insect have?", "An insect has six legs."),
    ("How many wheels does a bicycle have?", "A bicycle has two wheels."),
    ("How many strings does a violin have?", "A violin has four strings."),
    ("How many planets are in our solar system?", "There are eight planets in our solar system."),
    ("How many players does a football team have on the pitch?",
     "A football (soccer) team has eleven players on the pitch."),
    ("How many letters are in the English alphabet?", "The English alphabet has 26 letters."),
    ("How many degrees are in a right angle?", "A right angle has 90 degrees."),
]  # fmt: skip
FACTS = [
    ("What colour is fresh grass?", "Fresh grass is green."),
    ("What colour is a ripe banana?", "A ripe banana is yellow."),
    ("What is the chemical symbol for gold?", "The chemical symbol for gold is Au."),
    ("What is the chemical symbol for iron?", "The chemical symbol for iron is Fe."),
    ("What is the chemical symbol for oxygen?", "The chemical symbol for oxygen is O."),
    ("Which planet is closest to the Sun?", "Mercury is the planet closest to the Sun."),
    ("What is the hardest natural material?", "Diamond is the hardest natural material."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa."),
    ("Who wrote Pride and Prejudice?", "Jane Austen wrote Pride and Prejudice."),
    ("What is the longest river in Africa?", "The Nile is the longest river in Africa."),
    ("What is the largest desert in the world?",
     "The largest hot desert is the Sahara; counting cold deserts, Antarctica is the largest."),
    ("What do caterpillars turn into?", "Caterpillars turn into butterflies or moths."),
    ("What is the main gas in the air we breathe?",
     "Nitrogen makes up about 78 percent of the air; oxygen about 21 percent."),
    ("Which organ pumps blood around the body?", "The heart pumps blood around the body."),
    ("What is the largest mammal?", "The blue whale is the largest mammal."),
    ("What is the fastest land animal?", "The cheetah is the fastest land animal."),
    ("What do cows drink?", "Cows drink water."),
    ("What is a group of wolves called?", "A group of wolves is called a pack."),
    ("What is the smallest prime number?", "The smallest prime number is 2."),
    ("What is the square root of 81?", "The square root of 81 is 9."),
]  # fmt: skip
EXPLAIN = [
    ("What is photosynthesis?",
     "Photosynthesis is how plants make food. Using energy from sunlight, they turn water "
     "and carbon dioxide into sugar and release oxygen into the air."),
    ("Why do we have seasons?",
     "Earth's axis is tilted. As Earth orbits the Sun, each half of the planet leans towards "
     "the Sun for part of the year, getting more direct sunlight and longer days: summer."),
    ("How does a rainbow form?",
     "Sunlight enters raindrops, bends, reflects off the back of the drop and bends again on "
     "the way out. Each colour bends by a slightly different amount, so the light spreads "
     "into a band of colours."),
    ("What is a volcano?",
     "A volcano is an opening in Earth's crust where molten rock, gas and ash escape from "
     "below. When pressure builds up underneath, the volcano can erupt."),
    ("Why is recycling useful?",
     "Recycling turns used materials into new products. It saves raw materials and energy "
     "and keeps waste out of landfills."),
    ("Why does the Moon seem to change shape?",
     "The Moon does not change shape. As it orbits Earth we see different amounts of its "
     "sunlit half, which gives the phases from new moon to full moon."),
    ("What is gravity?",
     "Gravity is the force that pulls objects with mass towards each other. It keeps us on "
     "the ground and keeps the Moon in orbit around Earth."),
    ("Why is the sea salty?",
     "Rain slowly wears down rocks on land and carries dissolved minerals, including salt, "
     "into rivers and then the sea. The water evaporates but the salt stays behind."),
    ("What is a noun?",
     "A noun is a word that names a person, place, thing or idea, such as teacher, London, "
     "table or happiness."),
    ("What is a verb?",
     "A verb is a word that describes an action or a state, such as run, think or be."),
    ("How do magnets work?",
     "A magnet has a north and a south pole. Opposite poles attract and like poles repel, "
     "and magnets pull on materials such as iron."),
    ("Why do leaves change colour in autumn?",
     "In autumn trees stop making chlorophyll, the green pigment. As it fades, yellow and "
     "orange pigments that were there all along become visible."),
    ("How do I boil an egg?",
     "Put the egg in a pan of boiling water. Cook it for about six minutes for a soft yolk "
     "or ten minutes for a hard one, then cool it in cold water."),
    ("Give me a tip for learning a new language.",
     "Practise a little every day: short daily sessions of reading, listening and speaking "
     "help more than one long session a week."),
    ("What is a budget?",
     "A budget is a plan for your money. It lists what you expect to earn and spend, so you "
     "can see where your money goes and save for what matters."),
    ("What is DNA?",
     "DNA is the molecule that carries the genetic instructions of living things. It is "
     "shaped like a twisted ladder, the double helix."),
    ("What is a fraction?",
     "A fraction is a part of a whole, written as one number over another. In 3/4 the whole "
     "is split into four equal parts and we take three of them."),
    ("Why do we need to drink water?",
     "Water keeps the body working: it carries nutrients, controls temperature and removes "
     "waste. We lose water all day, so we need to replace it."),
    ("What does a thermometer measure?",
     "A thermometer measures temperature, how hot or cold something is."),
    ("How can I write a good email?",
     "Use a clear subject line, say what you need in the first sentence, keep it short and "
     "end with a polite closing."),
    ("Summarise what a map is for.",
     "A map is a drawing of an area that shows where places are and how to get between them."),
    ("What is the difference between weather and climate?",
     "Weather is what the air is doing now or this week; climate is the usual pattern of "
     "weather in a place over many years."),
    ("Why do birds migrate?",
     "Many birds fly to warmer places in winter to find food, and return in spring to breed "
     "where food is plentiful again."),
    ("What does a doctor do?",
     "A doctor examines people, works out what is making them ill and treats them, for "
     "example with medicine or advice."),
    ("Tell me a fun fact about octopuses.",
     "An octopus has three hearts and blue blood."),
]  # fmt: skip
QA_FORMS = {
    "capital": ["What is the capital of {x}?", "Which city is the capital of {x}?"],
    "baby": ["What do you call a baby {x}?", "What is a young {x} called?"],
    "opposite": ["What is the opposite of {x}?", "Give the opposite of the word '{x}'."],
    "language": ["What is the main language spoken in {x}?", "Which language do people in {x} speak?"],
}  # fmt: skip


def _chat(q: str, a: str) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def build_rows() -> list[dict]:
    """Every row, in a seeded order."""
    rng = random.Random(SEED)
    rows: list[dict] = []
    for country, city in CAPITALS:
        for form in QA_FORMS["capital"]:
            rows.append(_chat(form.format(x=country), f"The capital of {country} is {city}."))
    for animal, baby in BABIES:
        for form in QA_FORMS["baby"]:
            rows.append(_chat(form.format(x=animal), f"A baby {animal} is called a {baby}."))
    for word, opp in OPPOSITES:
        for form in QA_FORMS["opposite"]:
            rows.append(_chat(form.format(x=word), f"The opposite of '{word}' is '{opp}'."))
    for country, lang in LANGUAGES:
        form = rng.choice(QA_FORMS["language"])
        rows.append(_chat(form.format(x=country), f"The main language of {country} is {lang}."))
    rows += [_chat(q, a) for q, a in COUNTS + FACTS + EXPLAIN]
    for _ in range(40):
        a, b = rng.randint(3, 60), rng.randint(3, 40)
        op = rng.choice(["plus", "minus", "times"])
        value = {"plus": a + b, "minus": a - b, "times": a * b}[op]
        rows.append(_chat(f"What is {a} {op} {b}?", f"{a} {op} {b} is {value}."))
    rng.shuffle(rows)
    seen: set[str] = set()
    unique = []
    for r in rows:
        q = r["messages"][0]["content"]
        if q not in seen:
            seen.add(q)
            unique.append(r)
    return unique


def forgetting_questions(assets: Path) -> set[str]:
    """The forgetting check's questions, which the mixture must never contain."""
    path = assets / "general" / "general.jsonl"
    out: set[str] = set()
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            for m in row.get("messages", []):
                if m.get("role") == "user":
                    out.add(m["content"].strip().lower())
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parent.parent / "assets"
    p.add_argument("--out", type=Path, default=default, help="assets directory (default: repo)")
    args = p.parse_args(argv)
    rows = build_rows()
    banned = forgetting_questions(args.out)
    clash = [r for r in rows if r["messages"][0]["content"].strip().lower() in banned]
    if clash:
        print(f"mixture overlaps the forgetting check: {clash[0]}", file=sys.stderr)
        return 1
    path = args.out / "general" / "mix.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    tmp.replace(path)
    print(f"{path}: {len(rows)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How the sandbox's stand-ins solve math word problems (GSM8K's kind): a cue-word solver, honest about being one.

It is no language model and gets most problems wrong; what matters is that models differ in a way that can be
learned. The solver reads the problem clause by clause. Each clause's numbers become quantities, and a cue word in the
clause says how a number relates to the quantity before it (a `Lexicon`: stemmed word -> relation): "half" makes a new
quantity half the last one, "more" one that is N more, "each" turns the last one into N times it (a rate), "spent"
takes N from it, "%" takes N percent of it, and so on; a clause without a cue adds its number as a new quantity. The
question (the clause ending with "?") picks the answer: the sum of the quantities after a word like "altogether", the
difference of the last two after "difference", else the last quantity. It writes its steps as GSM8K does, with
calculator annotations (`48/2 = <<48/2=24>>24`), and ends with `#### N`.

- The teacher knows the whole built-in lexicon (CUES, FINAL_CUES).
- A base student sees each cue word only with a seeded 50% chance (the same vocabulary hiding as the lexical
  classifier, sandbox/openai/lexical.py), so it misreads more clauses.
- A fine-tuned student starts from its base's lexicon and learns cue words from its training file
  (`learn_lexicon`): for each training problem it lines the answer's calculator steps up with the clauses whose numbers
  they use, and credits the clause's words with the step's operation; a word credited at least twice, and for one
  relation in most of its clauses, becomes a cue. Trained on a teacher's worked answers it picks up the teacher's
  cues, and answers more like the teacher; trained on answers without steps it learns nothing.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from sandbox.openai.text import seeded_index, terms

# Relations of a clause's number to the last quantity. "new" ones add a quantity, the others replace the last one.
MORE, LESS, TIMES, HALF, DOUBLE, TRIPLE, THIRD, QUARTER = "more", "less", "times", "half", "double", "triple", \
    "third", "quarter"
GAIN, SPEND, RATE, SPLIT, PERCENT = "gain", "spend", "rate", "split", "percent"
SUM, DIFFERENCE = "sum", "difference"
NONE = "none"  # while learning: a clause (or question) that no step explains
FACTORS = {HALF: ("/", 2), DOUBLE: ("*", 2), TRIPLE: ("*", 3), THIRD: ("/", 3), QUARTER: ("/", 4)}
ADDS_QUANTITY = {MORE, LESS, TIMES, *FACTORS}
OPERATOR = {MORE: "+", GAIN: "+", LESS: "-", SPEND: "-", TIMES: "*", RATE: "*", SPLIT: "/"}
_SOURCE = {
    HALF: "half", DOUBLE: "twice double", TRIPLE: "triple thrice", THIRD: "third", QUARTER: "quarter",
    TIMES: "times", MORE: "more older longer taller extra", LESS: "less fewer younger shorter cheaper",
    GAIN: "gets got buys bought finds found receives received earns earned adds added",
    SPEND: "spent spends spend gave gives lost loses ate eats used uses paid pays",
    RATE: "each per every apiece", SPLIT: "split divided divides shared equally among",
}
_FINAL_SOURCE = {SUM: "total altogether all combined together both sum", DIFFERENCE: "difference"}


def _lexicon(source: Mapping[str, str]) -> dict[str, str]:
    return {term: relation for relation, words in source.items() for term in terms(words)}


CUES = _lexicon(_SOURCE)
FINAL_CUES = _lexicon(_FINAL_SOURCE)
_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
          "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
          "hundred": 100, "dozen": 12}
_NUMBER = re.compile(r"\$?(\d[\d,]*(?:\.\d+)?|\.\d+|\b(?:" + "|".join(_WORDS) + r")\b)(\s*%| percent)?", re.IGNORECASE)
_STEP = re.compile(r"<<([^<>=]+)=([^<>]+)>>")
_OPERAND = re.compile(r"\d+(?:\.\d+)?")
_CLAUSE = re.compile(r"(?<=[.!?])\s+|,\s+and\s+|\s+and then\s+|;\s+")


def is_word_problem(text: str) -> bool:
    """A question with numbers in it, asking how many, how much or what."""
    return "?" in text and bool(re.search(r"\d", text)) and bool(
        re.search(r"(?i)\b(how (many|much|long|old|far)|what)\b", text))


@dataclass(frozen=True)
class Lexicon:
    cues: dict[str, str] = field(default_factory=dict)  # stemmed word -> relation
    final: dict[str, str] = field(default_factory=dict)  # stemmed word -> sum | difference

    def seen_by(self, seed: int, recall: float) -> Lexicon:
        """The cues a model with `recall` of the vocabulary sees (as sandbox/openai/lexical.py hides words)."""
        def visible(term: str) -> bool:
            return recall >= 1.0 or seeded_index(seed, "vocabulary:" + term, 1000) < recall * 1000

        return Lexicon({t: r for t, r in self.cues.items() if visible(t)},
                       {t: r for t, r in self.final.items() if visible(t)})

    def merged(self, learned: Lexicon) -> Lexicon:
        """This lexicon with the words it lacks taken from `learned` (what a model knows is kept)."""
        return Lexicon({**learned.cues, **self.cues}, {**learned.final, **self.final})


TEACHER_LEXICON = Lexicon(CUES, FINAL_CUES)


def _clauses(text: str) -> list[str]:
    return [c.strip() for c in _CLAUSE.split(text.strip()) if c and c.strip()]


def _numbers(clause: str) -> list[tuple[Fraction, bool]]:
    found = []
    for match in _NUMBER.finditer(clause):
        try:
            text = match.group(1).lower()
            value = Fraction(_WORDS[text]) if text in _WORDS else Fraction(text.replace(",", ""))
            found.append((value, bool(match.group(2))))
        except ValueError:
            continue
    return found


def _show(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.2f}".rstrip("0").rstrip(".")


@dataclass
class _Work:
    quantities: list[Fraction] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def step(self, left: Fraction, operator: str, right: Fraction, words: str) -> Fraction:
        value = {"+": left + right, "-": left - right, "*": left * right,
                 "/": left / right if right else left}[operator]
        expression = f"{_show(left)}{operator}{_show(right)}"
        self.lines.append(f"{words}: {expression} = <<{expression}={_show(value)}>>{_show(value)}")
        return value


PRIORITY = (HALF, DOUBLE, TRIPLE, THIRD, QUARTER, PERCENT, TIMES, MORE, LESS, RATE, SPLIT, GAIN, SPEND, SUM, DIFFERENCE)


def _relation(clause_terms: list[str], cues: Mapping[str, str]) -> str | None:
    """The clause's relation: of the cue words in it, the one first in PRIORITY ("half" over "sold")."""
    found = {cues[t] for t in clause_terms if t in cues}
    return next((r for r in PRIORITY if r in found), None)


def _apply(work: _Work, clause: str, lexicon: Lexicon) -> None:
    words = terms(clause)
    relation = _relation(words, lexicon.cues)
    label = " ".join(clause.rstrip(".?!").split()[:8])
    numbers = _numbers(clause)
    last = work.quantities[-1] if work.quantities else None
    if last is not None and relation in FACTORS and not any(not pct for _, pct in numbers):
        operator, factor = FACTORS[relation]
        work.quantities.append(work.step(last, operator, Fraction(factor), label))
        return
    for number, percent in numbers:
        last = work.quantities[-1] if work.quantities else None
        if last is None or (relation is None and not percent):
            work.quantities.append(number)
        elif percent or relation == PERCENT:
            part = work.step(last, "*", number / 100, label)
            work.quantities[-1:] = [part]
        elif relation in OPERATOR:
            value = work.step(last, OPERATOR[relation], number, label)
            if relation in ADDS_QUANTITY:
                work.quantities.append(value)
            else:
                work.quantities[-1] = value
        else:
            work.quantities.append(number)


def solve(problem: str, lexicon: Lexicon) -> str:
    """A worked answer to `problem`, ending with `#### N` (see the module docstring)."""
    work = _Work()
    clauses = _clauses(problem)
    question = next((c for c in reversed(clauses) if c.endswith("?")), "")
    for clause in clauses:
        _apply(work, clause, lexicon)
    final = _relation(terms(question), lexicon.final)
    if final == SUM and len(work.quantities) > 1:
        total = work.quantities[0]
        for quantity in work.quantities[1:]:
            total = work.step(total, "+", quantity, "In all")
        answer = total
    elif final == DIFFERENCE and len(work.quantities) > 1:
        answer = work.step(max(work.quantities[-2:]), "-", min(work.quantities[-2:]), "The difference")
    else:
        answer = work.quantities[-1] if work.quantities else Fraction(0)
    return "\n".join([*work.lines, f"#### {_show(answer)}"])


def _steps(answer: str) -> list[tuple[list[Fraction], str]]:
    """The calculator steps of a worked answer: their operands and operator."""
    steps = []
    for expression, _ in _STEP.findall(answer):
        operator = next((o for o in "+-*/" if o in expression.lstrip("-")), None)
        operands = [Fraction(x) for x in _OPERAND.findall(expression)]
        if operator and len(operands) >= 2:
            steps.append((operands, operator))
    return steps


def _relation_of(operator: str, operands: list[Fraction], explicit: bool) -> str | None:
    """What a step's operation says about the clause it came from."""
    if not explicit:
        return next((r for r, (o, f) in FACTORS.items() if o == operator and operands[-1] == f), None)
    if operator == "*" and operands[-1] < 1:
        return PERCENT
    return {"+": MORE, "-": SPEND, "*": RATE, "/": SPLIT}[operator]


def learn_lexicon(examples: Iterable[tuple[str, str]], min_count: int = 3, min_share: float = 0.7) -> Lexicon:
    """Cue words learned from (problem, worked answer) pairs (see the module docstring)."""
    credit: dict[str, Counter[str]] = defaultdict(Counter)
    final_credit: dict[str, Counter[str]] = defaultdict(Counter)
    for problem, answer in examples:
        steps = _steps(answer)
        if not steps or not is_word_problem(problem):
            continue
        used = [False] * len(steps)
        clauses = _clauses(problem)
        seen: set[tuple[str, str]] = set()  # each word counts once per problem and relation
        for clause in clauses:
            numbers = [n for n, _ in _numbers(clause)]
            relation = NONE  # a clause whose numbers no step takes up says what a cue-less clause looks like
            for i, (operands, operator) in enumerate(steps):
                explicit = bool(numbers) and numbers[0] in operands[1:]
                if used[i] or not (explicit or (not numbers and operands[-1] in (2, 3, 4))):
                    continue
                relation = _relation_of(operator, operands, explicit) or NONE
                used[i] = relation != NONE
                break
            for term in set(terms(clause)) - {t for t in terms(clause) if t.isdigit()}:
                if (term, relation) not in seen:
                    seen.add((term, relation))
                    credit[term][relation] += 1
        final = {"+": SUM, "-": DIFFERENCE}.get(steps[-1][1]) if len(steps[-1][0]) >= 2 and not used[-1] else None
        question = next((c for c in reversed(clauses) if c.endswith("?")), "")
        for term in {t for t in terms(question) if not t.isdigit()}:
            final_credit[term][final or NONE] += 1
    return Lexicon(_confident(credit, min_count, min_share), _confident(final_credit, min_count, min_share))


def _confident(credit: Mapping[str, Counter[str]], min_count: int, min_share: float) -> dict[str, str]:
    """Words that mostly came with one relation, and with some relation in a good share of their clauses."""
    learned = {}
    for term, counts in credit.items():
        related = Counter({r: n for r, n in counts.items() if r != NONE})
        if not related:
            continue
        relation, n = related.most_common(1)[0]
        if n >= min_count and n / related.total() >= min_share and related.total() >= 0.4 * counts.total():
            learned[term] = relation
    return learned

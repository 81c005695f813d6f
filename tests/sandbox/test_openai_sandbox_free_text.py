"""The sandbox's free-text, extraction and judging stand-ins: what differs by model is real, and what a fine-tuned
model knows comes from its training file. Word problems are GSM8K's (../shared/data/gsm8k)."""

from __future__ import annotations

import json

from bot.graders.base import Sample
from bot.graders.judges import LabelModel, ScoreModel
from bot.graders.numeric import final_number
from bot.graders.pairwise import Pairwise
from bot.prompts.schemas import fields_schema, response_format
from sandbox.openai.extraction import FieldReader, learn_keys
from sandbox.openai.learned import LearnedModel
from sandbox.openai.word_problems import TEACHER_LEXICON, Lexicon, solve
from tests.sandbox.openai_sandbox_support import client, jsonl, wait_until

STUDENT = TEACHER_LEXICON.seen_by(0, 0.5)  # what the sandbox's base student sees (seed 0)


def gsm8k(shared_dir, start: int, count: int) -> list[dict]:
    with open(shared_dir / "data" / "gsm8k" / "train.jsonl", encoding="utf-8") as lines:
        return [json.loads(line) for i, line in enumerate(lines) if start <= i < start + count]


def agreement(lexicon: Lexicon, rows: list[dict]) -> int:
    """Rows where `lexicon` reaches the teacher's final number."""
    return sum(final_number(solve(r["question"], lexicon)) == final_number(solve(r["question"], TEACHER_LEXICON))
               for r in rows)


def right(lexicon: Lexicon, rows: list[dict]) -> int:
    return sum(final_number(solve(r["question"], lexicon)) == final_number(r["answer"]) for r in rows)


def test_the_teacher_solves_more_word_problems_than_the_base_student_and_writes_gsm8k_steps(shared_dir):
    rows = gsm8k(shared_dir, 3000, 400)
    assert right(TEACHER_LEXICON, rows) > right(STUDENT, rows)
    worked = solve("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
                   "How many clips did Natalia sell altogether in April and May?", TEACHER_LEXICON)
    assert worked.splitlines()[-1] == "#### 72" and "<<48/2=24>>24" in worked and "<<48+24=72>>72" in worked


def test_a_fine_tuned_student_learns_the_teachers_cue_words_from_its_training_file(shared_dir):
    train, test = gsm8k(shared_dir, 0, 300), gsm8k(shared_dir, 3000, 400)
    learned = LearnedModel([(r["question"], solve(r["question"], TEACHER_LEXICON)) for r in train])
    distilled = STUDENT.merged(learned.lexicon)
    assert learned.lexicon.cues and agreement(distilled, test) > agreement(STUDENT, test) + 20
    # answers without calculator steps teach nothing: the student stays as it was
    blind = LearnedModel([(r["question"], "#### 0") for r in train])
    assert blind.lexicon == Lexicon() and agreement(STUDENT.merged(blind.lexicon), test) == agreement(STUDENT, test)


def test_extraction_reads_fields_by_key_words_and_a_student_learns_the_keys():
    schema = fields_schema("customer:string,amount:number,paid:boolean")
    prompts = [f"Invoice {i}. Client: Firm {i} Ltd; total due {100 + i}; settled: {'yes' if i % 2 else 'no'}."
               for i in range(12)]
    teacher = FieldReader()
    assert [teacher.read(prompts[3], name, kind) for name, kind in
            (("customer", "string"), ("amount", "number"), ("paid", "boolean"))] == ["Firm 3 Ltd", 103, True]
    answers = [json.dumps({"customer": f"Firm {i} Ltd", "amount": 100 + i}) for i in range(12)]
    keys = learn_keys(zip(prompts, answers, strict=True))
    assert keys == {"customer": frozenset({"client"}), "amount": frozenset({"due"})}
    learner = FieldReader(recall=0.0, learned=keys)  # sees none of the built-in keys: only what it learned
    assert learner.read(prompts[5], "amount", "number") == 105 and learner.read(prompts[5], "paid", "boolean") is None
    assert schema["required"] == ["customer", "amount", "paid"]


async def test_judges_score_by_the_reference_through_the_api(openai_sandbox):
    question = "Weng earns $12 an hour for babysitting. She did 50 minutes. How much did she earn?"
    reference = "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nSo she earned 0.2 x 50 = $<<0.2*50=10>>10.\n#### 10"
    good, bad = "She earns 0.2 per minute, 0.2 x 50 = 10.\n#### 10", "12 + 50 = 62\n#### 62"
    score, label = ScoreModel(), LabelModel()
    async with client(openai_sandbox) as sdk:
        async def judged(grader, answer):
            sample = Sample(answer, reference, question)
            reply = await sdk.chat.completions.create(model="gpt-4o", messages=grader.messages(sample),
                                                      response_format=grader.response_format)
            return grader.grade(reply.choices[0].message.content)

        async def pairwise(student, teacher, order):
            messages = Pairwise.messages(Sample(student, reference, question), teacher, order)
            reply = await sdk.chat.completions.create(model="gpt-4o", messages=messages)
            return Pairwise.verdict(reply.choices[0].message.content)

        assert (await judged(score, good)).score > 0.8 > (await judged(score, bad)).score
        assert (await judged(label, good)).passed and not (await judged(label, bad)).passed
        # the better answer wins in both orders; two near-equal answers are a tie once both orders are judged
        assert Pairwise.outcome(await pairwise(good, bad, "ab"), await pairwise(good, bad, "ba")) == "win"
        close = "0.2 x 50 = 10\n#### 10"
        assert Pairwise.outcome(await pairwise(good, close, "ab"), await pairwise(good, close, "ba")) == "tie"


async def test_a_fine_tuned_model_answers_word_problems_with_what_its_file_taught_it(openai_sandbox, shared_dir):
    train, test = gsm8k(shared_dir, 0, 200), gsm8k(shared_dir, 3000, 60)
    rows = [{"messages": [{"role": "user", "content": r["question"]},
                          {"role": "assistant", "content": solve(r["question"], TEACHER_LEXICON)}]} for r in train]
    async with client(openai_sandbox) as sdk:
        file_id = (await sdk.files.create(file=("train.jsonl", jsonl(rows)), purpose="fine-tune")).id
        job = await sdk.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=file_id)
        job = await wait_until(lambda: sdk.fine_tuning.jobs.retrieve(job.id), lambda j: j.status == "succeeded")

        async def answers(model):
            return [(await sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": r[
                "question"]}])).choices[0].message.content for r in test]

        base, tuned = await answers("gpt-4o-mini-2024-07-18"), await answers(job.fine_tuned_model)
        teacher = [final_number(solve(r["question"], TEACHER_LEXICON)) for r in test]
        agree = [sum(final_number(a) == t for a, t in zip(found, teacher, strict=True)) for found in (base, tuned)]
        assert agree[1] > agree[0]
        # an extraction request is answered with the schema's fields, read from the prompt
        reply = await sdk.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Client: Acme; total due 40; settled: no."}],
            response_format=response_format(fields_schema("customer:string,amount:number,paid:boolean")))
        assert json.loads(reply.choices[0].message.content) == {"customer": "Acme", "amount": 40, "paid": False}


def test_a_fine_tuned_classifier_learns_from_what_varies_in_a_many_class_prompt(shared_dir):
    """Every prompt lists all 32 grapes (as the wine cookbook's does): a learner counting that list answers the
    commonest grape for nearly every row; it must learn from the review instead."""
    import csv
    from collections import Counter

    from sandbox.openai.naive_bayes import NaiveBayes

    with open(shared_dir / "data" / "wine-reviews-france.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    counts = Counter(r["variety"] for r in rows)
    labels = [label for label, n in counts.items() if n >= 5]
    rows = [r for r in rows if r["variety"] in labels]

    def prompt(row: dict) -> str:
        return f"Guess the grape variety. Pick one of: {', '.join(labels)}.\n{row['description']}"

    train, test = rows[:600], rows[1000:1200]
    learned = NaiveBayes([(prompt(r), r["variety"]) for r in train])
    predicted = [learned.classify(prompt(r), labels) for r in test]
    commonest = Counter(r["variety"] for r in test).most_common(1)[0][1] / len(test)
    assert len(labels) >= 30 and len(set(predicted)) >= 8
    assert sum(p == r["variety"] for p, r in zip(predicted, test, strict=True)) / len(test) > commonest + 0.05

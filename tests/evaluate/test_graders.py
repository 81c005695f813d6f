"""Each grader against values worked out by hand on small fixed examples, and against the library it wraps."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from bot.graders import JudgeSettings, check_grader, grader_for
from bot.graders.base import Sample
from bot.graders.fields import JsonMatch
from bot.graders.judges import LabelModel, ScoreModel
from bot.graders.numeric import Numeric, final_number
from bot.graders.pairwise import LOSS, TIE, WIN, messages, outcome, verdict
from bot.graders.similarity import TextSimilarity, WordNetMissing, meteor, wordnet
from bot.graders.strings import StringCheck

# OpenAI's Graders guide uses this pair for text_similarity (fuzzy_match example).
REFERENCE = "fuzzy wuzzy was a bear"
ANSWER = "fuzzy wuzzy had no hair"


def grade(grader, answer, reference=REFERENCE):
    return grader.grade(Sample(answer, reference))


@pytest.mark.parametrize(("op", "answer", "reference", "passed"), [
    ("eq", "Billing", "Billing", True), ("eq", "billing", "Billing", False), ("eq", "Billing ", "Billing", False),
    ("ne", "billing", "Billing", True), ("ne", "Billing", "Billing", False),
    # like/ilike: the answer CONTAINS the reference (not the other way round)
    ("like", "It is Billing.", "Billing", True), ("like", "Billing", "It is Billing.", False),
    ("like", "It is billing.", "Billing", False), ("ilike", "It is billing.", "BILLING", True),
    # % and _ are literal, not SQL wildcards
    ("like", "50% off", "50%", True), ("like", "500 off", "5%", False),
])
def test_string_check_follows_openais_four_operations(op, answer, reference, passed):
    result = grade(StringCheck(op), answer, reference)
    assert (result.passed, result.score) == (passed, 1.0 if passed else 0.0)


def test_string_check_accepts_the_guides_neq_and_refuses_others():
    assert check_grader("string_check:NEQ", "generate") == "string_check:ne"
    with pytest.raises(ValueError, match="eq, ne, like, ilike"):
        check_grader("string_check:contains", "generate")


def test_a_missing_answer_fails_and_a_missing_reference_is_not_graded():
    assert (grade(StringCheck(), None).score, grade(StringCheck(), None).passed) == (0.0, False)
    assert not grade(StringCheck(), "x", None).graded


def test_text_similarity_on_the_guides_pair_by_hand():
    # fuzz.ratio = 2 * matching characters / total length: the Indel distance of the two 22- and 23-character texts
    # is 11, so 1 - 11/45 = 0.7556
    assert grade(TextSimilarity("fuzzy_match"), ANSWER).score == pytest.approx(1 - 11 / 45)
    # ROUGE-1 F: 2 of 5 unigrams shared each way -> P = R = F = 0.4; ROUGE-2: "fuzzy wuzzy" is 1 of 4 bigrams -> 0.25;
    # no shared trigram; LCS "fuzzy wuzzy" = 2 -> 0.4
    expected = {"rouge_1": 0.4, "rouge_2": 0.25, "rouge_3": 0.0, "rouge_4": 0.0, "rouge_5": 0.0, "rouge_l": 0.4}
    for metric, value in expected.items():
        assert grade(TextSimilarity(metric), ANSWER).score == pytest.approx(value)
    # GLEU = min(precision, recall) over all 1-4 grams: 3 shared n-grams (fuzzy, wuzzy, fuzzy wuzzy) of 14 each way
    assert grade(TextSimilarity("gleu"), ANSWER).score == pytest.approx(3 / 14)
    # BLEU: precisions 2/5, 1/4, then sacrebleu's exp smoothing 1/2 and 1/4 for the empty 3- and 4-gram counts
    # (1/(2^k) over 3 and 2 n-grams: 0.5/3, 0.25/2), brevity penalty 1
    bleu = (2 / 5 * 1 / 4 * (1 / 2) / 3 * (1 / 4) / 2) ** 0.25
    assert grade(TextSimilarity("bleu"), ANSWER).score == pytest.approx(bleu)


def test_text_similarity_equals_the_libraries_it_wraps():
    import sacrebleu
    from nltk.translate.gleu_score import sentence_gleu
    from rapidfuzz import fuzz
    from rouge_score import rouge_scorer

    pairs = [(ANSWER, REFERENCE), ("The cat sat on the mat.", "A cat was sitting on the mat."),
             ("Reset your password from the login page.", "Use the login page to reset the password.")]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge3", "rougeL"])
    for answer, reference in pairs:
        rouge = scorer.score(reference, answer)
        assert grade(TextSimilarity("rouge_1"), answer, reference).score == rouge["rouge1"].fmeasure
        assert grade(TextSimilarity("rouge_3"), answer, reference).score == rouge["rouge3"].fmeasure
        assert grade(TextSimilarity("rouge_l"), answer, reference).score == rouge["rougeL"].fmeasure
        assert grade(TextSimilarity("fuzzy_match"), answer, reference).score == fuzz.ratio(answer, reference) / 100
        assert grade(TextSimilarity("bleu"), answer, reference).score == pytest.approx(
            sacrebleu.sentence_bleu(answer, [reference]).score / 100)
        assert grade(TextSimilarity("gleu"), answer, reference).score == sentence_gleu([reference.split()],
                                                                                       answer.split())


def test_a_pass_threshold_passes_at_or_above_it():
    assert grade(TextSimilarity("rouge_l", 0.4), ANSWER).passed is True  # 0.4 >= 0.4
    assert grade(TextSimilarity("rouge_l", 0.41), ANSWER).passed is False
    assert grade(TextSimilarity("rouge_l"), ANSWER).passed is None  # no threshold: a mean score only
    assert check_grader("rouge_l:0.60", "generate") == "rouge_l:0.6"
    with pytest.raises(ValueError, match="from 0 to 1"):
        check_grader("bleu:30", "generate")


class Synonyms:
    """WordNet's `synsets(word)` for a handful of words: enough for METEOR's synonym stage."""

    class Lemma:
        def __init__(self, name: str) -> None:
            self._name = name

        def name(self) -> str:
            return self._name

    class Synset:
        def __init__(self, *names: str) -> None:
            self._names = names

        def lemmas(self) -> list:
            return [Synonyms.Lemma(name) for name in self._names]

    def synsets(self, word: str, pos=None) -> list:
        return [Synonyms.Synset("quick", "fast", "speedy")] if word in ("quick", "fast") else []


def test_meteor_by_hand_with_and_without_a_synonym():
    # "the fast brown dog" vs "the quick brown dog". Without the synonym: 3 of 4 unigrams match each way, so P = R =
    # 3/4 and Fmean = PR / (0.9P + 0.1R) = 3/4; the matches form 2 chunks ("the", "brown dog"), penalty
    # 0.5 * (2/3)^3 = 4/27; METEOR = 3/4 * (1 - 4/27) = 0.6389.
    empty = type("NoSynonyms", (), {"synsets": lambda self, word, pos=None: []})()
    assert meteor("the fast brown dog", "the quick brown dog", empty) == pytest.approx(0.75 * (1 - 4 / 27))
    # With fast ~ quick all 4 match in 1 chunk: P = R = Fmean = 1, penalty 0.5 * (1/4)^3
    assert meteor("the fast brown dog", "the quick brown dog", Synonyms()) == pytest.approx(1 - 0.5 / 64)


def test_meteor_without_wordnet_says_how_to_get_it(monkeypatch, tmp_path):
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    wordnet.cache_clear()
    try:
        with pytest.raises(WordNetMissing, match=r"nltk\.downloader wordnet"):
            TextSimilarity("meteor").check_available()
    finally:
        wordnet.cache_clear()


@pytest.mark.parametrize(("text", "number"), [
    # GSM8K: the number after "#### ", thousands separators dropped
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", "72"), ("so $1,250 in all.\n#### 1,250", "1250"),
    ("#### -3", "-3"), ("#### 5 and later 6", "5"),
    # else the last number after the last "Answer:"
    ("12 + 3 = 15\nAnswer: 15", "15"), ("Answer: 4. Wait. Answer: $18.00", "18.00"),
    # else the last number in the text
    ("She has 3 apples and buys 4 more, so 7.", "7"), ("no digits here", None),
])
def test_the_final_number_of_a_worked_answer(text, number):
    assert final_number(text) == (Decimal(number) if number else None)


def test_numeric_compares_numbers_within_the_tolerance():
    reference = "... so she earned $<<0.2*50=10>>10.\n#### 10"
    assert grade(Numeric(), "#### 10.00", reference).passed is True  # GSM8K's string check would say no
    assert grade(Numeric(), "The answer is 11", reference).passed is False
    assert grade(Numeric(Decimal("1")), "The answer is 11", reference).passed is True
    assert grade(Numeric(), "I cannot tell", reference).passed is False
    assert grade(Numeric(), "12", "no number here").graded is False


def test_json_match_field_by_field():
    reference = json.dumps({"name": "Acme Corp", "amount": 12, "paid": True, "tags": ["a", "b"]})
    result = grade(JsonMatch(), '{"name": "  ACME corp", "amount": 12.0, "paid": false, "tags": ["a", "b"]}',
                   reference)
    assert result.fields == {"name": True, "amount": True, "paid": False, "tags": True}
    assert (result.score, result.passed) == (0.75, False)
    assert grade(JsonMatch(), "not json", reference).fields == dict.fromkeys(("name", "amount", "paid", "tags"),
                                                                             False)
    missed = grade(JsonMatch(), None, reference)
    assert (missed.score, missed.passed, set(missed.fields.values())) == (0.0, False, {False})
    assert grade(JsonMatch(), "{}", "[1]").graded is False
    with pytest.raises(ValueError, match="task=extract"):
        check_grader("json_match", "generate")


def test_score_model_asks_for_steps_then_a_result_and_clamps_it():
    grader = ScoreModel(threshold=0.7)
    schema = grader.response_format["json_schema"]["schema"]
    assert list(schema["properties"]) == ["steps", "result"] and grader.response_format["json_schema"]["strict"]
    assert grader.grade('{"steps": [], "result": 0.8}').passed is True
    assert grader.grade('{"steps": [], "result": 1.7}').score == 1.0
    assert grader.grade('{"steps": [], "result": -2}').score == 0.0
    # OpenAI: "default to 0 for all non-numeric outputs"
    assert grader.grade('{"steps": [], "result": "high"}').score == 0.0 and grader.grade("oops").score == 0.0
    [system, user] = grader.messages(Sample("#### 5", "#### 6", "What is 2+3?"))
    assert system["role"] == "system" and "[The Start of Reference Answer]\n#### 6" in user["content"]
    assert "[The Start of Assistant's Answer]\n#### 5" in user["content"]


def test_label_model_passes_on_a_passing_label():
    grader = grader_for("label_model", JudgeSettings(labels=("correct", "partly", "wrong"),
                                                     passing_labels=("correct", "partly")))
    assert isinstance(grader, LabelModel)
    assert grader.response_format["json_schema"]["schema"]["properties"]["result"]["enum"] == ["correct", "partly",
                                                                                               "wrong"]
    assert grader.grade('{"steps": [], "result": "partly"}').passed is True
    assert grader.grade('{"steps": [], "result": "wrong"}').score == 0.0
    assert grader.grade('{"steps": [], "result": "maybe"}').graded is False


def test_pairwise_reads_fastchat_verdicts_and_needs_both_orders_to_agree():
    assert verdict("A is clearer. [[A]]") == "A" and verdict("[[C]]") == "C" and verdict("no verdict") is None
    assert verdict("[[B]] ... though [[A]]") == "A"  # FastChat checks [[A]] first
    # ab: the student is A; ba: the teacher is A
    assert outcome("A", "B") == WIN and outcome("B", "A") == LOSS
    assert outcome("A", "A") == TIE  # position bias: each order preferred whoever came first
    assert outcome("C", "B") == TIE and outcome("A", "C") == TIE and outcome("A", None) is None
    [system, user] = messages(Sample("student", "gold", "Q?"), "teacher", "ba")
    assert "[[C]]" in system["content"] and "reference answer" in system["content"]
    assert user["content"].index("teacher") < user["content"].index("student")


def test_no_grader_runs_code():
    with pytest.raises(ValueError, match="never runs code"):
        check_grader("python", "generate")


def test_cosine_by_hand_clipped_to_openais_scale():
    import numpy as np

    from bot.graders.embeddings import Cosine, cosine

    # (1, 2, 2) . (2, 1, 2) = 8; both have length 3: cos = 8/9
    assert cosine(np.array([1.0, 2, 2]), np.array([2.0, 1, 2])) == pytest.approx(8 / 9)
    assert cosine(np.array([1.0, 0]), np.array([-1.0, 0])) == 0.0  # opposite: clipped to 0
    assert cosine(np.array([0.0, 0]), np.array([1.0, 0])) == 0.0
    assert Cosine(0.8).grade("0.888889").passed is True and Cosine(0.9).grade("0.888889").passed is False
    assert Cosine().grade(None).graded is False
    assert check_grader("cosine:0.8", "generate") == "cosine:0.8"


def test_meteor_without_wordnet_leaves_its_rows_ungraded_saying_why(monkeypatch, tmp_path):
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    wordnet.cache_clear()
    try:
        found = grade(TextSimilarity("meteor"), ANSWER)
    finally:
        wordnet.cache_clear()
    assert not found.graded and "nltk.downloader wordnet" in found.error

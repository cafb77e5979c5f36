"""Multi-turn cases: the user turns are played against the target, the transcript is kept, and scorers and
judges address a given turn or the whole transcript."""

from __future__ import annotations

import json

import pytest

from evalplatform import results as R
from evalplatform.errors import InputError
from evalplatform.models.local_provider import register_app
from tests.python_targets import make_suite, run_suite

JUDGE_INPUTS: list[str] = []


def numbered(messages: list[dict], params: dict) -> str:
    """A model that numbers its replies and repeats the last user message: it shows what it was sent."""
    n = sum(1 for m in messages if m["role"] == "assistant") + 1
    return f"reply {n} to {messages[-1]['content']} (saw {len(messages)} messages)"


def recording_judge(messages: list[dict], params: dict) -> str:
    JUDGE_INPUTS.append(messages[-1]["content"])
    return json.dumps({"reasoning": "fine", "verdict": "PASS"})


register_app("numbered", numbered)
register_app("recording-judge", recording_judge)

CONVERSATION = [
    {"role": "user", "content": "first question"},
    {"role": "assistant", "expect": {"contains": "reply 1 to first question"}},
    {"role": "user", "content": "second question"},
    {"role": "assistant", "content": "a fixed earlier reply"},  # history given as written, not played
    {"role": "user", "content": "third question"},
    {"role": "assistant", "expect": {"contains": "saw 6 messages", "not_contains": "first question"}},
]


def _cases(conversation=None):
    return [
        {"id": "single", "category": "one", "question": "just one", "must_contain": []},
        {"id": "conv", "category": "many", "conversation": conversation or CONVERSATION, "must_contain": []},
    ]


SCORERS = [
    {"id": "expectations", "type": "turn_expectations", "criterion": "dialogue", "when": {"tags": ["category:many"]}},
    {"id": "first_reply", "type": "contains", "criterion": "dialogue", "value": "reply 1", "turn": 1},
    {"id": "every_reply_numbered", "type": "regex", "criterion": "dialogue", "pattern": "^reply \\d", "turn": "each"},
    {"id": "whole_transcript", "type": "contains", "criterion": "dialogue", "value": "user: second question",
     "turn": "transcript", "when": {"tags": ["category:many"]}},
    {"id": "judged", "type": "llm_judge", "criterion": "tone", "judge": {"model": "local/recording-judge"},
     "rubric_text": "PASS when polite.", "cache": False},
]


def test_a_model_target_plays_the_user_turns_and_keeps_the_transcript(tmp_path):
    each_judged = {"id": "each_judged", "type": "llm_judge", "criterion": "tone", "turn": "each",
                   "judge": {"model": "local/recording-judge"}, "rubric_text": "PASS when polite.", "cache": False}
    # The PR tier runs the LLM judges too here (by default it runs deterministic scorers and cheap judges only).
    suite = make_suite(tmp_path, "", cases=_cases(), scorers=[*SCORERS, each_judged],
                       target={"model": "local/numbered", "system_prompt": "Be helpful."},
                       extra={"tiers": {"pr": {"scorers": ["deterministic", "llm_judge"]}, "nightly": {}}})
    JUDGE_INPUTS.clear()
    run = run_suite(suite)
    rows = {(r["case_id"], r["scorer"]): r for r in run.results.iter_rows(named=True)}
    for scorer in ("expectations", "first_reply", "every_reply_numbered", "whole_transcript", "judged", "each_judged"):
        assert rows[("conv", scorer)]["outcome"] == "pass", rows[("conv", scorer)]
    # A judge's usage on a conversation is the sum over the turns it judged: one verdict per played reply.
    assert rows[("conv", "judged")]["scorer_calls"] == 1 and rows[("conv", "each_judged")]["scorer_calls"] == 2
    assert rows[("single", "each_judged")]["scorer_calls"] == 1
    assert rows[("conv", "each_judged")]["scorer_tokens_in"] > rows[("conv", "judged")]["scorer_tokens_in"]
    assert rows[("conv", "first_reply")]["scorer_calls"] is None  # a deterministic scorer calls no model
    conv = R.call_rows(run.results).filter(R.call_rows(run.results)["case_id"] == "conv").row(0, named=True)
    trace = json.loads(run.outputs[conv["trace_hash"]])
    assert [m["role"] for m in trace["transcript"]] == ["system", "user", "assistant", "user", "assistant", "user",
                                                         "assistant"]
    assert trace["transcript"][4]["content"] == "a fixed earlier reply"
    assert run.outputs[conv["output_hash"]] == "reply 3 to third question (saw 6 messages)"  # the last reply
    assert [t["output"][:7] for t in trace["turns"]] == ["reply 1", "reply 3"]
    # The judge of the conversation saw every earlier turn, not a `question` field it does not have.
    judged_conv = next(i for i in JUDGE_INPUTS if "third question" in i)
    assert "user: first question" in judged_conv and "assistant: a fixed earlier reply" in judged_conv
    # A single-turn case next to it is unchanged: no trace, its own question shown to the judge.
    single = R.call_rows(run.results).filter(R.call_rows(run.results)["case_id"] == "single").row(0, named=True)
    assert single["trace_hash"] is None and any("just one" in i for i in JUDGE_INPUTS)


def test_a_turn_expectation_that_fails_names_the_turn(tmp_path):
    conversation = [dict(m) for m in CONVERSATION]
    conversation[5] = {"role": "assistant", "expect": {"contains": "reply 9"}}
    suite = make_suite(tmp_path, "", cases=_cases(conversation), scorers=SCORERS[:1],
                       target={"model": "local/numbered"})
    row = run_suite(suite).results.row(0, named=True)
    assert row["outcome"] == "fail" and row["score"] == 0.5
    assert row["explanation"] == "turn 2: missing 'reply 9'"


def test_each_turn_must_pass_and_a_turn_that_does_not_exist_is_an_error(tmp_path):
    scorers = [{"id": "no_two", "type": "not_contains", "criterion": "c", "value": "reply 2", "turn": "each"},
               {"id": "fifth", "type": "contains", "criterion": "c", "value": "x", "turn": 5}]
    conversation = [{"role": "user", "content": "a"}, {"role": "assistant"}, {"role": "user", "content": "b"}]
    suite = make_suite(tmp_path, "", cases=_cases(conversation)[1:], scorers=scorers,
                       target={"model": "local/numbered"})
    rows = {r["scorer"]: r for r in run_suite(suite).results.iter_rows(named=True)}
    assert rows["no_two"]["outcome"] == "fail" and "reply 2" in rows["no_two"]["explanation"]
    assert rows["fifth"]["outcome"] == "error" and "no assistant turn 5" in rows["fifth"]["error"]


MEMORY = '''
class Memory:
    def setup(self, case):
        self.heard = []

    def __call__(self, case):
        self.heard.append(case.prompt)
        return "I heard: " + ", ".join(self.heard) + f" (turn {case.turn}, {len(case.messages)} messages)"
'''


def test_a_python_target_keeps_its_instance_across_the_turns_of_one_conversation(tmp_path):
    conversation = [{"role": "user", "content": "a"}, {"role": "assistant", "expect": {"contains": "I heard: a "}},
                    {"role": "user", "content": "b"},
                    {"role": "assistant", "expect": {"contains": "I heard: a, b (turn 1, 3 messages)"}}]
    suite = make_suite(tmp_path, MEMORY, cases=_cases(conversation)[1:], scorers=SCORERS[:1],
                       target={"python": "team_pipeline:Memory"})
    assert run_suite(suite, repeats=2).results["outcome"].to_list() == ["pass", "pass"]


@pytest.mark.parametrize("conversation, field, message", [
    ([{"role": "assistant"}, {"role": "user", "content": "hi"}], "conversation",
     "[0]: a played assistant turn must follow a user message"),
    ([{"role": "user", "content": ""}], "conversation.0", "a user message needs non-empty content"),
    ([{"role": "user", "content": "hi", "expect": {"contains": "x"}}], "conversation.0", "expect belongs on"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "expect": {}}], "conversation.1.expect",
     "needs at least one of contains"),
    ([{"role": "robot", "content": "hi"}], "conversation.0.role", "Input should be"),
])
def test_a_malformed_conversation_is_bad_input_naming_the_file_line_and_field(tmp_path, conversation, field, message):
    from evalplatform.datasets import load_cases

    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps({"id": "c1", "conversation": conversation}) + "\n")
    with pytest.raises(InputError) as err:
        load_cases([(path, None)])
    assert err.value.field == f"line 1: {field}" and message in err.value.message


def test_a_case_without_a_conversation_keeps_its_case_hash(tmp_path):
    from evalplatform.datasets import load_cases

    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps({"id": "c1", "question": "q"}) + "\n")
    # The hash recorded before conversations existed: regression sets and baselines align on it.
    assert load_cases([(path, None)]).cases["case_hash"][0] == \
        "ffbd9a66c2e21817f3bf7b5345e4d3739456701e15f777d52faefef23fa1aab4"

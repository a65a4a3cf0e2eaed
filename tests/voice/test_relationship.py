"""voice.relationship: the stated rules, by hand; pure."""

from __future__ import annotations

from voice.relationship import Person, score


def test_everyone_engaged_scores_100():
    people = [
        Person("Cam", "champion", 3),
        Person("Dee", "decision_maker", 30),  # 30 days is still "engaged"
        Person("Eve", "executive_sponsor", 10),
        Person("U1", "user", 40),
        Person("U2", "user", 90),  # 90 days: still counts for breadth
        Person("U3", "user", 91),  # 91: not
    ]
    r = score(people)
    # 30 + 20 + 20 + breadth min(5 engaged, 5) × 6 = 30 → 100
    assert r.score == 100
    assert r.engaged_people == 5
    assert r.reasons[0] == "champion Cam: last contact 3 days ago (30/30)"
    assert r.reasons[-1] == "5 people engaged in 90 days (30/30)"


def test_stale_contact_earns_half_and_never_a_fifth():
    people = [
        Person("Cam", "champion", 45),  # 31..90 days: 30 / 2 = 15
        Person("Dee", "decision_maker", None),  # named, never contacted: 20 / 5 = 4
        # no executive sponsor: 0
    ]
    r = score(people)
    # 15 + 4 + 0 + breadth 1 person × 6 = 25
    assert r.score == 25
    assert "decision maker Dee: never contacted (4/20)" in r.reasons
    assert "no executive sponsor named (0/20)" in r.reasons
    assert "1 person engaged in 90 days (6/30)" in r.reasons


def test_the_most_recently_contacted_holder_of_a_role_counts():
    r = score([Person("Old", "champion", 200), Person("New", "champion", 2)])
    # champion 30 + breadth 1 × 6 = 36
    assert r.score == 36
    assert r.reasons[0].startswith("champion New")


def test_a_champion_who_left_costs_20_while_no_champion_is_engaged():
    people = [Person("Dee", "decision_maker", 5), Person("Cam", "user", 100)]
    r = score(people, champions_left=["Cam"])
    # 0 + 20 + 0 + breadth 1 × 6 = 26 − 20 = 6
    assert r.score == 6
    assert "champion left (Cam) (−20)" in r.reasons


def test_no_penalty_once_a_new_champion_is_engaged():
    people = [Person("Nina", "champion", 20), Person("Cam", "user", None)]
    r = score(people, champions_left=["Cam"])
    assert r.score == 36  # 30 + breadth 6
    assert any("a new champion is engaged: no penalty" in x for x in r.reasons)


def test_score_never_below_zero():
    r = score([Person("U", "user", None)], champions_left=["Cam"])
    assert r.score == 0  # 0 − 20, floored


def test_no_stakeholders_is_no_data_not_zero():
    r = score([])
    assert r.score is None and r.reasons == ("no stakeholders known",)

"""Claim verdicts on the definitions topic (`hookline.claims`): the same records in the same order
give every process the same verdict."""

from __future__ import annotations

from hookline.claims import CLAIM_TTL_MS, Claim, Claims


def test_first_claim_on_the_current_version_wins_and_a_second_on_the_same_base_loses() -> None:
    claims = Claims()
    assert claims.judge("d", Claim("a", 1, 2), current=1, timestamp_ms=0)
    assert not claims.judge("d", Claim("b", 1, 2), current=1, timestamp_ms=1)


def test_claim_waits_for_the_unsettled_winner_even_with_a_fresh_number() -> None:
    claims = Claims()
    claims.judge("d", Claim("a", 1, 2), current=1, timestamp_ms=0)
    # b read claim a but not its head yet: from version 1 it would overwrite a's version 2 unseen.
    assert not claims.judge("d", Claim("b", 1, 3), current=1, timestamp_ms=5)


def test_after_the_head_is_written_the_next_claim_on_it_wins() -> None:
    claims = Claims()
    claims.judge("d", Claim("a", 1, 2), current=1, timestamp_ms=0)
    claims.settled("d")
    assert claims.judge("d", Claim("b", 2, 3), current=2, timestamp_ms=5)


def test_a_claim_on_an_old_base_loses() -> None:
    assert not Claims().judge("d", Claim("a", 1, 3), current=2, timestamp_ms=0)


def test_a_version_number_claimed_once_is_never_won_again() -> None:
    claims = Claims()
    claims.judge("d", Claim("a", 1, 5), current=1, timestamp_ms=0)  # won, writer then died
    later = CLAIM_TTL_MS + 1
    assert not claims.judge("d", Claim("b", 1, 5), current=1, timestamp_ms=later)
    assert claims.top("d") == 5


def test_an_unsettled_claim_stops_blocking_after_its_time_to_live() -> None:
    claims = Claims()
    claims.judge("d", Claim("a", 1, 2), current=1, timestamp_ms=0)
    assert not claims.judge("d", Claim("b", 1, 3), current=1, timestamp_ms=CLAIM_TTL_MS - 1)
    assert claims.judge("d", Claim("c", 1, 4), current=1, timestamp_ms=CLAIM_TTL_MS)


def test_deletion_claims_no_number_and_serialises_with_updates() -> None:
    claims = Claims()
    assert claims.judge("d", Claim("del", 3, None), current=3, timestamp_ms=0)
    assert not claims.judge("d", Claim("put", 3, 4), current=3, timestamp_ms=1)
    assert claims.top("d") == 4


def test_claims_encode_and_decode() -> None:
    for claim in (Claim("w", 0, 1), Claim("w", 7, None)):
        assert Claim.decode(claim.encode()) == claim


def test_definitions_do_not_share_claims() -> None:
    claims = Claims()
    claims.judge("d", Claim("a", 0, 1), current=0, timestamp_ms=0)
    assert claims.judge("e", Claim("b", 0, 1), current=0, timestamp_ms=1)

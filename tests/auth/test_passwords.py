"""New passwords' rules: NIST SP 800-63B section 5.1.1.2 (length, blocklist, no composition)."""

from __future__ import annotations

import pytest

from carnet.auth.passwords import MAX_PASSWORD, MIN_PASSWORD, PasswordRefused, check_new_password


class TestCheckNewPassword:
    @pytest.mark.parametrize(
        "password",
        [
            "correct horse battery staple",
            "mountain-river-7-lantern",
            "zzzzzzzzzzz" + "é",  # any character counts, none is required
            "a" * 3 + "x" * 3 + "b" * 6,
        ],
    )
    def test_a_long_uncommon_password_is_accepted_whatever_its_make_up(self, password: str) -> None:
        check_new_password(password, identifiers=["1980051712345"])

    def test_shorter_than_twelve_is_refused_for_everyone(self) -> None:
        with pytest.raises(PasswordRefused, match="at least 12"):
            check_new_password("x7#Kq!p2Lm9")
        check_new_password("x7#Kq!p2Lm9z")
        assert MIN_PASSWORD == 12

    def test_longer_than_the_bound_is_refused(self) -> None:
        check_new_password("horse-" * 21 + "ab")  # 128
        with pytest.raises(PasswordRefused, match=f"at most {MAX_PASSWORD}"):
            check_new_password("horse-" * 21 + "abc")

    @pytest.mark.parametrize("password", ["qwerty123456", "1q2w3e4r5t6y", "LeaveMeAlone"])
    def test_a_common_password_is_refused(self, password: str) -> None:
        with pytest.raises(PasswordRefused, match="most common"):
            check_new_password(password)

    @pytest.mark.parametrize("password", ["password1234", "sunshine!!2024", "dragon123456"])
    def test_a_common_password_with_digits_or_symbols_added_is_refused(self, password: str) -> None:
        with pytest.raises(PasswordRefused, match="most common"):
            check_new_password(password)

    @pytest.mark.parametrize(
        "password", ["aaaaaaaaaaaaaa", "abcabcabcabcabc", "abcdefghijklmn", "zyxwvutsrqpon"]
    )
    def test_repeated_or_sequential_characters_are_refused(self, password: str) -> None:
        with pytest.raises(PasswordRefused):
            check_new_password(password)

    def test_the_persons_identifier_or_the_services_name_is_refused(self) -> None:
        with pytest.raises(PasswordRefused, match="identifier"):
            check_new_password("1980051712345", identifiers=["1980051712345"])
        with pytest.raises(PasswordRefused, match="identifier"):
            check_new_password("my 1980051712345 pass", identifiers=["1980051712345"])
        with pytest.raises(PasswordRefused, match="service"):
            check_new_password("my carnet password")
